#!/usr/bin/env bash
# System packages SESami's tests and local stack need, installed only when missing:
# a Java runtime for Amazon DynamoDB Local, Node for npm, and Debian's Chromium, which the
# dashboard's browser tests drive through Playwright. (Debian/Ubuntu; run as root or with sudo.)
set -euo pipefail
need=()
command -v java >/dev/null 2>&1 || need+=(openjdk-17-jre-headless)
command -v node >/dev/null 2>&1 || need+=(nodejs npm)
[ -x /usr/bin/chromium ] || need+=(chromium)
[ ${#need[@]} -eq 0 ] && exit 0
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "installing system packages: ${need[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
