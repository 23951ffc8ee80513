"""``piiport serve``: the API under uvicorn, with the export supervisor in the same process."""

from __future__ import annotations

from piiport.config import Config


def run_server(
    config: Config,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    config_path: str | None = None,
    index_url: str | None = None,
) -> None:
    import uvicorn

    from piiport.service.app import ServerOptions, create_app

    app = create_app(ServerOptions(config=config, config_path=config_path, index_url=index_url, workers=workers))
    # One uvicorn process: the export supervisor lives in it and exports run in child processes.
    uvicorn.run(app, host=host, port=port, log_level="info", server_header=False)
