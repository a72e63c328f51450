#!/usr/bin/env bash
# tests/run.sh [area...] [-- busted options]: the test driver behind `make test`.
#   - area "c": the C engine tests (build/tests/engine_tests; its last line is
#     "engine: N passed, N failed");
#   - any other area: the busted specs (*_spec.lua) under tests/<area>, run under Lua 5.4 with one
#     busted process per area, so a crash loses one area only;
#   - no area: "c", then every folder of tests/ that holds specs.
# Specs tagged #slow or #gpu are left out unless BUSTED_EXCLUDE says otherwise (empty: run all).
# The last line printed is "N passed, N failed" over everything run; the exit status is 1 when
# anything failed or could not run.
# Environment: LG_BUILD (build tree, default build), LUA (the interpreter command, default
# lua5.4; check-asan puts an LD_PRELOAD of libasan in front), DEVICE (where luagrad.realize puts
# tensors and kernels: `DEVICE=LLVM tests/run.sh ops` runs the op suites on LLVM; make test-llvm).
# Specs get LG_ROOT (the source tree) and LG_BUILD (absolute) and find luagrad through
# LUA_PATH/LUA_CPATH.
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
build=$(cd "${LG_BUILD:-build}" 2>/dev/null && pwd) || { echo "no build tree ${LG_BUILD:-build}: run make"; echo "0 passed, 1 failed"; exit 1; }
export LG_ROOT=$root LG_BUILD=$build
export LUA_PATH="$build/share/lua/5.4/?.lua;$build/share/lua/5.4/?/init.lua;$root/tests/?.lua;;"
export LUA_CPATH="$build/lib/lua/5.4/?.so;;"
read -ra lua <<<"${LUA:-lua5.4}"
exclude=${BUSTED_EXCLUDE-slow,gpu}

areas=() busted_opts=()
while (($#)); do
  if [[ $1 == -- ]]; then shift; busted_opts=("$@"); break; fi
  areas+=("${1%/}"); shift
done
if ((${#areas[@]} == 0)); then
  areas=(c)
  while IFS= read -r dir; do areas+=("$dir"); done < <(find tests -mindepth 2 -name '*_spec.lua' -printf '%h\n' | cut -d/ -f2 | sort -u)
fi

passed=0 failed=0
# count LINE: add the "N passed, N failed" of LINE to the totals; 1 when LINE has none.
count() {
  [[ $1 =~ ([0-9]+)\ passed,\ ([0-9]+)\ failed ]] || return 1
  passed=$((passed + BASH_REMATCH[1])) failed=$((failed + BASH_REMATCH[2]))
}

for area in "${areas[@]}"; do
  label="$area: "
  if [[ $area == c ]]; then
    label=""
    out=$("$build/tests/engine_tests" 2>&1); status=$?
    out=$(grep -v ' \.\.\. ok$' <<<"$out") # passing C tests print a line each: keep the rest
  elif [[ -e tests/$area ]]; then
    out=$("${lua[@]}" -e 'require "busted.runner"({standalone = false})' /dev/null \
      --output=tests/terse_output.lua --exclude-tags="$exclude" "${busted_opts[@]}" "tests/$area" 2>&1); status=$?
  else
    echo "no such test area: tests/$area"
    failed=$((failed + 1))
    continue
  fi
  summary=$(tail -n 1 <<<"$out")
  head -n -1 <<<"$out"
  if ! count "$summary"; then
    [[ -n $summary ]] && echo "$summary"
    echo "$area: did not finish (exit status $status)"
    failed=$((failed + 1))
    continue
  fi
  echo "$label$summary"
  if [[ $status != 0 && $summary =~ \ 0\ failed ]]; then
    echo "$area: exit status $status"
    failed=$((failed + 1))
  fi
done

echo "$passed passed, $failed failed"
((failed == 0))
