#!/usr/bin/env python3
"""Summarise a perf profile of a node (docs/benchmarks.md, issue #19).

Record (the `profiling` cargo profile keeps line tables for call graphs):
    cargo build --profile profiling -p alliance-node -p alliance-tests --bins
    target/profiling/alliance-bench alliance --validators 4 --rates 3000 \
        --step-secs 45 --headline-secs 0 --accounts 20000 &
    sleep 25; perf record -F 499 --call-graph dwarf,16384 \
        -p "$(pgrep -f 'alliance-node run' | head -1)" -o perf.data -- sleep 15
    perf script -i perf.data -F comm,ip,sym > perf.txt

Then:
    scripts/perf-summary.py perf.txt                  # inclusive and self % by function
    scripts/perf-summary.py perf.txt --under SYMBOL   # what SYMBOL spends its time in
    scripts/perf-summary.py perf.txt --callers SYMBOL # who calls SYMBOL

Symbols are matched as substrings of the demangled names with generic
arguments folded to `<>` (for example `Store::commit`, `sigverify::verify_txs`).
"""
import argparse
import collections
import re

GENERICS = re.compile(r'<[^<>]*(<[^<>]*(<[^<>]*>[^<>]*)*>[^<>]*)*>')
PLUMBING = ('call', '{closure', 'fold', 'map<', 'from_iter', 'try_fold', 'next',
            'collect', 'spec_', 'for_each', 'extend')


def samples(path):
    """Each sample's frames, innermost first."""
    out, cur = [], None
    for line in open(path, errors='replace'):
        if not line.strip():
            if cur:
                out.append(cur)
            cur = None
        elif not line.startswith(('\t', ' ')):
            cur = []
        elif cur is not None:
            parts = line.strip().split(None, 1)
            sym = parts[1] if len(parts) > 1 else '?'
            sym = re.sub(r' \(inlined\)$', '', sym)
            cur.append(GENERICS.sub('<>', sym)[:160])
    if cur:
        out.append(cur)
    return out


def paths(all_samples, target, inward, depth):
    """Counts of the `depth` distinct frames next to the outermost `target`."""
    counts, hits = collections.Counter(), 0
    for s in all_samples:
        idx = [i for i, f in enumerate(s) if target in f]
        if not idx:
            continue
        hits += 1
        i, step, path = max(idx), (-1 if inward else 1), []
        j = i + step
        while 0 <= j < len(s) and len(path) < depth:
            f = s[j]
            if target not in f and f not in path and not f.startswith(PLUMBING):
                path.append(f)
            j += step
        counts[(' > ' if inward else ' < ').join(path) or '(self)'] += 1
    return hits, counts


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('perf_txt')
    ap.add_argument('--under')
    ap.add_argument('--callers')
    ap.add_argument('--depth', type=int, default=3)
    ap.add_argument('--top', type=int, default=40)
    a = ap.parse_args()
    s = samples(a.perf_txt)
    n = len(s)
    print(f'{n} samples')
    target = a.under or a.callers
    if target:
        hits, counts = paths(s, target, inward=bool(a.under), depth=a.depth)
        print(f'{target}: {100 * hits / n:.1f}% of all samples')
        for f, k in counts.most_common(a.top):
            print(f'  {100 * k / n:5.1f}%  {f[:260]}')
        return
    inclusive, own = collections.Counter(), collections.Counter()
    for frames in s:
        own[frames[0]] += 1
        for f in set(frames):
            inclusive[f] += 1
    print('--- inclusive')
    for f, k in inclusive.most_common(a.top):
        print(f'{100 * k / n:5.1f}%  {f}')
    print('--- self')
    for f, k in own.most_common(a.top):
        print(f'{100 * k / n:5.1f}%  {f}')


if __name__ == '__main__':
    main()
