#!/usr/bin/env bash
# Sets TWP up on a Debian machine, one line per step; `make run`, `make test` and
# `make venv` (hence .ci/run) call it when .venv is missing or older than a pyproject.toml.
#
#   bash scripts/setup.sh run    what `make run` needs: system packages, .venv with the kernel,
#                                every plugin and contrib/twp-* (no test extras, no
#                                Kerberos bindings), then the demo database
#   bash scripts/setup.sh test   what `make test` needs: every system package the tests start,
#                                .venv with every [test] extra (twp-windows-auth's brings its
#                                Kerberos bindings, compiled against libkrb5-dev)
#
#   --venv DIR      the virtual environment (default .venv)
#   --log FILE      where apt's and pip's output goes (default DIR/setup.log)
#   --config FILE   the config whose database the run set-up migrates (default config/twp.toml)
#   --no-install    never install system packages, only print the apt-get line for the missing
#                   ones and stop (what a user who is not root gets)
#
# PYTHON (default python3) creates the venv.  Steps stop at the first failure, which names
# the log and shows its end; nothing is installed with pip when a system package is missing.
set -euo pipefail

cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.."

usage="usage: bash scripts/setup.sh run|test [--venv DIR] [--log FILE] [--config FILE] [--no-install]"
target=${1:-}
case "$target" in
    run | test) shift ;;
    *) echo "setup: expected run or test, got '${target}'; $usage" >&2; exit 2 ;;
esac
venv=.venv
log=
config=config/twp.toml
no_install=
while [ $# -gt 0 ]; do
    case "$1" in
        --venv | --log | --config)
            [ $# -ge 2 ] || { echo "setup: $1 needs a value; $usage" >&2; exit 2; }
            case "$1" in
                --venv) venv=$2 ;;
                --log) log=$2 ;;
                --config) config=$2 ;;
            esac
            shift ;;
        --no-install) no_install=--no-install ;;
        *) echo "setup: unknown option $1; $usage" >&2; exit 2 ;;
    esac
    shift
done
log=${log:-$venv/setup.log}
PYTHON=${PYTHON:-python3}
export PYTHON

mkdir -p "$(dirname "$log")"
echo "== scripts/setup.sh $target, $(date -u +%Y-%m-%dT%H:%M:%SZ), as $(id -un)" >>"$log"

steps=3
[ "$target" = test ] || steps=4
step=0
started=0

# begin "what": prints the step's start on the line that done/fail completes.
begin() {
    step=$((step + 1))
    started=$(date +%s)
    printf 'setup [%d/%d] %s: ' "$step" "$steps" "$1"
    echo "-- [$step/$steps] $1" >>"$log"
}

done_() {
    echo "$* ($(($(date +%s) - started)) s)"
}

fail() {
    echo "FAILED"
    {
        echo "setup: $1"
        if [ -n "${CI:-}" ]; then
            echo "setup: $log (CI is set: all of it):"
            sed 's/^/    /' "$log"
        else
            echo "setup: the end of $log (the whole output of the step is there):"
            tail -n 25 "$log" | sed 's/^/    /'
        fi
    } >&2
    exit 1
}

# -- 1. system packages ---------------------------------------------------------------
begin "system packages"
if bash scripts/install-system-deps.sh --check --for "$target"; then
    done_ "present"
else
    # Without root (or with --no-install) this prints the apt-get line and fails: nothing
    # after it runs, so pip never meets a missing krb5-config or compiler.
    out=$(bash scripts/install-system-deps.sh --for "$target" $no_install 2>&1 >>"$log") || {
        if [ -z "$no_install" ] && [ "$(id -u)" -eq 0 ]; then
            echo "FAILED"
            echo "$out" >&2
            echo "setup: installing them failed; apt-get's output is in $log" >&2
        else
            echo "missing"
            echo "$out" >&2
        fi
        echo "setup: no Python package was installed; install the system packages above, then run \`make $target\` again" >&2
        exit 1
    }
    done_ "installed with apt-get (output in $log)"
fi

# -- 2. virtual environment ----------------------------------------------------------
begin "virtual environment $venv"
if [ -x "$venv/bin/python" ] && "$venv/bin/python" -m pip --version >>"$log" 2>&1; then
    how="kept"
elif [ -e "$venv" ] && [ -x "$venv/bin/python" ]; then
    # Left half-made, e.g. by `python3 -m venv` before python3-venv was installed (no pip in it).
    how="re-created (it had no pip) with $(command -v "$PYTHON")"
    "$PYTHON" -m venv --clear "$venv" >>"$log" 2>&1 || fail "$PYTHON -m venv --clear $venv failed"
else
    how="created with $(command -v "$PYTHON")"
    "$PYTHON" -m venv "$venv" >>"$log" 2>&1 || fail "$PYTHON -m venv $venv failed"
fi
"$venv/bin/python" -m pip install --disable-pip-version-check --progress-bar off --upgrade pip "setuptools>=68" wheel \
    >>"$log" 2>&1 || fail "upgrading pip, setuptools and wheel in $venv failed"
done_ "$how, $("$venv/bin/python" --version)"

# -- 3. kernel and plugins ------------------------------------------------------------
# The kernel, every first-party plugin, then the example third-party plugins (contrib/twp-*).  For `test`
# each with its [test] extra (a project without one only makes pip print a warning).
projects=(.)
for pyproject in plugins/*/pyproject.toml contrib/twp-*/pyproject.toml; do
    [ -f "$pyproject" ] && projects+=("$(dirname "$pyproject")")
done
extra=
[ "$target" = test ] && extra="[test]"
args=()
for project in "${projects[@]}"; do
    args+=(-e "$project$extra")
done
if [ "$target" = test ]; then
    begin "kernel and $((${#projects[@]} - 1)) plugins with test extras (pip output in $log; the Kerberos bindings compile for minutes)"
else
    begin "kernel and $((${#projects[@]} - 1)) plugins (pip output in $log)"
fi
"$venv/bin/python" -m pip install --disable-pip-version-check --progress-bar off "${args[@]}" >>"$log" 2>&1 \
    || fail "pip could not install the kernel and plugins into $venv"
done_ "installed"

# -- 4. database (run only; the tests make their own) ------------------------------
if [ "$target" = run ]; then
    begin "database of $config"
    said=$("$venv/bin/twp" --config "$config" db upgrade 2>>"$log") || fail "twp --config $config db upgrade failed"
    echo "$said" >>"$log"
    done_ "$said"
fi
