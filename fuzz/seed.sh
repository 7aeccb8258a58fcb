#!/bin/sh
# Seeds the `tokens` target's corpus with every trybuild UI test (right and wrong declarations).
set -e
cd "$(dirname "$0")"
mkdir -p corpus/tokens corpus/structured
for f in $(find ../tests/ui -name '*.rs'); do
    cp "$f" "corpus/tokens/ui_$(echo "${f#../tests/ui/}" | tr / _)"
done
