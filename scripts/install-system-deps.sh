#!/usr/bin/env bash
# Installs the Debian packages TWP's build, tests and demo need: the real servers the
# test kit starts (PostgreSQL, slapd, unixODBC drivers; redis, sipp… later) and what
# builds wheels.
#
#   bash scripts/install-system-deps.sh           install what is missing (root), or
#                                                 say what to install (non-root)
#   bash scripts/install-system-deps.sh --check   exit 0 if everything needed is usable,
#                                                 1 if not; installs nothing, prints nothing
#
# Idempotent: when every package is installed it does nothing (no apt-get update).
# As root a package counts as missing when dpkg says it is not installed; as non-root,
# and for --check, when its probe fails, so a developer who already has the programs
# some other way is not blocked.
set -euo pipefail

# One line per Debian package: the package, then its probe, which is
#   /absolute/path/glob   some file matches
#   command               the command is on PATH
#   python:venv           $PYTHON can create a venv with pip (Debian: python3-venv)
#   python:headers        $PYTHON's Python.h exists (Debian: python3-dev)
# Add servers here as the test kit learns them, for example
#   redis-server redis-server | sip-tester sipp
#   krb5-kdc /usr/sbin/krb5kdc | krb5-user kinit | chromium chromium
# slapd, ldap-utils and openssl serve the LDAP tests (SlapdServer, its TLS certificates);
# unixodbc and its drivers the ODBC tests (unixodbc-dev builds pyodbc where no wheel fits).
SYSTEM_PACKAGES='
postgresql        /usr/lib/postgresql/*/bin/initdb
make              make
build-essential   gcc
python3-dev       python:headers
python3-venv      python:venv
slapd             /usr/sbin/slapd
ldap-utils        ldapsearch
openssl           openssl
unixodbc          isql
unixodbc-dev      /usr/include/sql.h
libsqliteodbc     /usr/lib/*/odbc/libsqlite3odbc.so
odbc-postgresql   /usr/lib/*/odbc/psqlodbcw.so
mdbtools          mdb-export
odbc-mdbtools     /usr/lib/*/odbc/libmdbodbc.so
krb5-kdc          /usr/sbin/krb5kdc
krb5-admin-server /usr/sbin/kadmind
krb5-user         kinit
libkrb5-dev       krb5-config
'

PYTHON=${PYTHON:-python3}

check_only=false
case "${1:-}" in
    --check) check_only=true ;;
    "") ;;
    *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

say() { $check_only || echo "install-system-deps: $*"; }

probe() {
    local spec=$1
    case "$spec" in
        /*)
            # Unquoted on purpose: the probe is a glob.
            local matches
            matches=$(compgen -G "$spec" || true)
            [ -n "$matches" ] ;;
        python:venv)
            "$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1 ;;
        python:headers)
            "$PYTHON" -c 'import os, sys, sysconfig
sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
                >/dev/null 2>&1 ;;
        *)
            command -v "$spec" >/dev/null 2>&1 ;;
    esac
}

dpkg_installed() {
    [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" = "install ok installed" ]
}

packages=()
probes=()
while read -r package spec; do
    [ -n "$package" ] || continue
    packages+=("$package")
    probes+=("$spec")
done <<<"$SYSTEM_PACKAGES"

unusable=()
for i in "${!packages[@]}"; do
    probe "${probes[$i]}" || unusable+=("${packages[$i]}")
done

if $check_only; then
    [ ${#unusable[@]} -eq 0 ]
    exit
fi

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1 || ! command -v dpkg-query >/dev/null 2>&1; then
    if [ ${#unusable[@]} -eq 0 ]; then
        say "all ${#packages[@]} system dependencies usable: ${packages[*]}"
        exit 0
    fi
    {
        echo "install-system-deps: missing system packages: ${unusable[*]}"
        if command -v apt-get >/dev/null 2>&1; then
            echo "install-system-deps: install them as root, then re-run:"
            echo "    sudo apt-get update && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${unusable[*]}"
            echo "  or: sudo bash $0"
        else
            echo "install-system-deps: this is not a Debian-like system; install the equivalents of these Debian packages."
        fi
    } >&2
    exit 1
fi

missing=()
for package in "${packages[@]}"; do
    dpkg_installed "$package" || missing+=("$package")
done

if [ ${#missing[@]} -eq 0 ]; then
    say "all ${#packages[@]} system packages installed: ${packages[*]}"
else
    say "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y --no-install-recommends "${missing[@]}"
fi

# A package installed but not usable means a wrong probe or a broken install: say so
# now rather than as a puzzling test failure.
still=()
for i in "${!packages[@]}"; do
    probe "${probes[$i]}" || still+=("${packages[$i]} (probe: ${probes[$i]})")
done
if [ ${#still[@]} -gt 0 ]; then
    echo "install-system-deps: installed but not usable: ${still[*]}" >&2
    exit 1
fi
