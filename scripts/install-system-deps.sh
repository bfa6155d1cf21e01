#!/usr/bin/env bash
# Installs the Debian packages TWP's build, tests and demo need: the real servers the
# test kit starts (PostgreSQL, slapd, unixODBC drivers; redis, sipp… later) and what
# builds wheels.  `scripts/setup.sh` (hence `make run` and `make test`) calls it first.
#
#   bash scripts/install-system-deps.sh              install what is missing (root), or
#                                                    say what to install (non-root)
#   bash scripts/install-system-deps.sh --check      exit 0 if everything needed is usable,
#                                                    1 if not; installs nothing, prints nothing
#   bash scripts/install-system-deps.sh --no-install never install, only say what to install
#                                                    (what a non-root user gets, also as root)
#   --for run                                        only what `make run` needs (default: test,
#                                                    everything `make test` needs)
#
# Idempotent: when every package is installed it does nothing (no apt-get update).
# As root a package counts as missing when dpkg says it is not installed; as non-root,
# with --no-install and for --check, when its probe fails, so a developer who already
# has the programs some other way is not blocked.
set -euo pipefail

# One line per Debian package: the package, its probe, and which set-up needs it.
# The probe is
#   /absolute/path/glob   some file matches
#   command               the command is on PATH
#   python:venv           $PYTHON can create a venv with pip (Debian: python3-venv)
#   python:headers        $PYTHON's Python.h exists (Debian: python3-dev)
# "run" packages are what `make run` needs (every kernel and plugin dependency it installs
# has a prebuilt wheel); "test" packages are added for `make test`.
# Add servers here as the test kit learns them, for example
#   redis-server redis-server test
# tshark (with text2pcap) checks the CSTA BER frames (issue 14); sip-tester is SIPp, the SIP
# phone of the Snom/Yealink tests (issue 16); chromium and chromium-driver run the console's
# browser tests (issue 17), driven by Playwright on the system browser, never a download.
# slapd, ldap-utils and openssl serve the LDAP tests (SlapdServer, its TLS certificates);
# unixodbc and its drivers the ODBC tests (unixodbc-dev builds pyodbc where no wheel fits);
# the krb5 packages the KDC of the WindowsSecurity tests, and libkrb5-dev with gcc and the
# Python headers build the gssapi and krb5 bindings, which have no Linux wheels.
SYSTEM_PACKAGES='
make              make                                run
python3-venv      python:venv                         run
unixodbc          isql                                run
postgresql        /usr/lib/postgresql/*/bin/initdb    test
build-essential   gcc                                 test
python3-dev       python:headers                      test
slapd             /usr/sbin/slapd                     test
ldap-utils        ldapsearch                          test
openssl           openssl                             test
unixodbc-dev      /usr/include/sql.h                  test
libsqliteodbc     /usr/lib/*/odbc/libsqlite3odbc.so   test
odbc-postgresql   /usr/lib/*/odbc/psqlodbcw.so        test
mdbtools          mdb-export                          test
odbc-mdbtools     /usr/lib/*/odbc/libmdbodbc.so       test
krb5-kdc          /usr/sbin/krb5kdc                   test
krb5-admin-server /usr/sbin/kadmind                   test
krb5-user         kinit                               test
libkrb5-dev       krb5-config                         test
tshark            tshark                              test
sip-tester        sipp                                test
chromium          /usr/bin/chromium                   test
chromium-driver   /usr/bin/chromedriver               test
redis-server      redis-server                        test
'

PYTHON=${PYTHON:-python3}

usage="usage: $0 [--check | --no-install] [--for run|test]"
check_only=false
no_install=false
wanted=test
while [ $# -gt 0 ]; do
    case "$1" in
        --check) check_only=true ;;
        --no-install) no_install=true ;;
        --for)
            [ $# -ge 2 ] || { echo "$usage" >&2; exit 2; }
            wanted=$2
            shift ;;
        *) echo "$usage" >&2; exit 2 ;;
    esac
    shift
done
case "$wanted" in
    run | test) ;;
    *) echo "install-system-deps: --for $wanted: expected run or test; $usage" >&2; exit 2 ;;
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
while read -r package spec need; do
    [ -n "$package" ] || continue
    # A "test" set-up needs every package; a "run" set-up only the "run" ones.
    [ "$wanted" = test ] || [ "$need" = run ] || continue
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

if $no_install || [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1 || ! command -v dpkg-query >/dev/null 2>&1; then
    if [ ${#unusable[@]} -eq 0 ]; then
        say "all ${#packages[@]} system dependencies usable: ${packages[*]}"
        exit 0
    fi
    {
        echo "install-system-deps: missing system packages: ${unusable[*]}"
        if command -v apt-get >/dev/null 2>&1; then
            echo "install-system-deps: install them as root, then re-run:"
            echo "    sudo apt-get update && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${unusable[*]}"
            echo "  or: sudo bash $0 --for $wanted"
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
