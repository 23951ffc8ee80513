#!/bin/sh
# The nightly inventory: scan, then write the HTML report and check retention, whatever the scan
# found. Run by cron or by the systemd timer in the README.
#
#   PIIPORT_CONFIG       the config file (sources, index, retention rules)
#   PIIPORT_REPORT_DIR   where report-YYYY-MM-DD.html goes (default: the current folder)
#
# Exit code, the most serious of the three commands': 2 usage or configuration error, then
# 3 policy (new personal data, a retention breach), then 1 errors (a container that could not
# be read), else 0.
set -u
: "${PIIPORT_CONFIG:?set PIIPORT_CONFIG to the config file}"
out="${PIIPORT_REPORT_DIR:-.}/report-$(date -u +%F).html"

piiport scan --fail-on new-pii; scan=$?
[ "$scan" -eq 2 ] && exit 2
piiport report --out "$out"; report=$?
piiport retention; retention=$?

worst=0
for code in "$scan" "$report" "$retention"; do
  case "$code" in
    2) worst=2 ;;
    3) [ "$worst" -ne 2 ] && worst=3 ;;
    0) ;;
    *) [ "$worst" -eq 0 ] && worst=1 ;;
  esac
done
exit "$worst"
