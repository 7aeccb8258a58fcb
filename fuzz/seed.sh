#!/bin/sh
# Seeds the corpora: the `tokens` target with every trybuild UI test (right and wrong
# declarations), the `structured` target with 200 random inputs of 64-511 bytes (from an empty
# corpus libFuzzer starts with tiny inputs, which `arbitrary` turns into default values; long
# random seeds reach deep chains with extreme sizes at once: with them a 4-minute run found
# the batch overflow of codegen/tests/fuzz_regressions.rs, without them 5 minutes did not).
set -e
cd "$(dirname "$0")"
mkdir -p corpus/tokens corpus/structured
for f in $(find ../tests/ui -name '*.rs'); do
    cp "$f" "corpus/tokens/ui_$(echo "${f#../tests/ui/}" | tr / _)"
done
i=0
while [ $i -lt 200 ]; do
    head -c $((64 + $(od -An -N2 -tu2 /dev/urandom) % 448)) /dev/urandom > "corpus/structured/seed_$i"
    i=$((i + 1))
done
