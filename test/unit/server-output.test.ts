/**
 * `<server-output>` neutralising against look-alikes generated from Unicode data, not a fixed list of attacks:
 * every code point of the running engine is classified once (by general category, default-ignorable property,
 * NFKC and canonical decomposition), and the tests build tags from those classes, exhaustively for each class
 * member and at random (fast-check, seeded) for combinations.
 */
import { describe, test } from '@jest/globals';
import fc from 'fast-check';
import assert from '../support/assert';
import { GREATER_THAN_LIKE, LESS_THAN_LIKE, neutraliseServerOutputTags, wrapServerOutput } from '../../workflows/dag/server-output';

function* allCodePoints(): Generator<string> {
  for (let cp = 0; cp <= 0x10ffff; cp++) if (cp < 0xd800 || cp > 0xdfff) yield String.fromCodePoint(cp);
}

/**
 * Visual confusables that no normalisation maps (Unicode's confusables.txt, UTS #39, for U+003C, U+003E and
 * U+002F, plus the angle brackets and quotation marks of the Ps/Pe/Pi/Pf/Sm categories a reader takes for them).
 */
const VISUAL = {
  lt: [0xab, 0x2c2, 0x1438, 0x16b2, 0x2039, 0x2329, 0x2770, 0x276e, 0x27e8, 0x27ea, 0x2991, 0x29fc, 0x3008, 0x300a, 0xfe3d, 0xfe3f, 0x1d236],
  gt: [0xbb, 0x2c3, 0x1433, 0x203a, 0x232a, 0x2771, 0x276f, 0x27e9, 0x27eb, 0x2992, 0x29fd, 0x3009, 0x300b, 0xfe3e, 0xfe40, 0x16f3f, 0x1d237],
  slash: [0x1735, 0x2041, 0x2044, 0x2215, 0x2571, 0x27cb, 0x29f8, 0x2cc6, 0x2f03, 0x3033, 0x31d3, 0x4e3f, 0x1d23a],
};

const lt = new Set<string>();
const gt = new Set<string>();
const slash = new Set<string>();
const invisible: string[] = [];
/** For each letter of "server" and "output": every code point that reads as it after NFKC and lower-casing. */
const letterForms = new Map<string, string[]>([...'serverotup'].map((c) => [c, []]));

// One pass over every code point, by property and normalisation only.
const INVISIBLE_CLASSES = /^[\p{Cf}\p{Zs}\p{Zl}\p{Zp}\p{Cc}\p{Mn}\p{Me}\p{Default_Ignorable_Code_Point}\p{Variation_Selector}\p{White_Space}]$/u;
for (const ch of allCodePoints()) {
  const forms = ch.normalize('NFKC') + ch.normalize('NFD');
  if (forms.includes('<')) lt.add(ch);
  if (forms.includes('>')) gt.add(ch);
  // Ligature-like forms with letters around the slash (℀ a/c) are not slashes to a reader.
  if ((ch.normalize('NFKC') === '/' || ch.normalize('NFD') === '/') && ch !== '/') slash.add(ch);
  if (INVISIBLE_CLASSES.test(ch)) invisible.push(ch);
  const folded = ch.normalize('NFKC').toLowerCase();
  const bucket = letterForms.get(folded);
  if (bucket) bucket.push(ch);
}
for (const cp of VISUAL.lt) lt.add(String.fromCodePoint(cp));
for (const cp of VISUAL.gt) gt.add(String.fromCodePoint(cp));
for (const cp of VISUAL.slash) slash.add(String.fromCodePoint(cp));
// Blank symbols: visible as nothing (braille blank, Hangul fillers), though not default-ignorable everywhere.
invisible.push('\u2800', '\u3164', '\uFFA0');
slash.add('/');
slash.add('\\');

/**
 * How a lenient reader sees text, independent of the code under test: look-alikes read as the ASCII bracket or
 * slash, invisible characters vanish, everything else after NFKC in lower case.
 */
const invisibleSet = new Set(invisible);
function readerView(text: string): string {
  let out = '';
  for (const ch of text) {
    if (lt.has(ch)) out += '<';
    else if (gt.has(ch)) out += '>';
    else if (slash.has(ch)) out += '/';
    else if (invisibleSet.has(ch)) continue;
    else out += ch.normalize('NFKC').toLowerCase();
  }
  return out;
}

/** Tag starts and tag ends a lenient reader finds in wrapped output. */
function tagsSeen(wrapped: string): { opens: number; closes: number } {
  const view = readerView(wrapped);
  return { opens: [...view.matchAll(/<[/!?]*server/g)].length, closes: [...view.matchAll(/(?:output|server)\/*>/g)].length };
}

function assertOnlyTheRealTags(text: string): void {
  const wrapped = wrapServerOutput('n', text);
  assert.ok(wrapped.startsWith('<server-output node="n">\n') && wrapped.endsWith('\n</server-output>'));
  // The real opening and closing tags: two starts ("<server", "</server"), one end ("output>").
  assert.deepEqual(tagsSeen(wrapped), { opens: 2, closes: 1 }, `a tag survives in ${JSON.stringify(wrapped)}`);
}

describe('candidates come from the Unicode data', () => {
  test('the classes are not empty (the engine has its Unicode tables)', () => {
    assert.ok(lt.size >= 20 && gt.size >= 20 && slash.size >= 15, `${lt.size} ${gt.size} ${slash.size}`);
    assert.ok(invisible.length > 3000, `${invisible.length} invisible`);
    for (const [letter, forms] of letterForms) assert.ok(forms.length >= 20, `${letter}: ${forms.length} forms`);
  });
});

describe('every look-alike, one at a time', () => {
  test('each opening bracket before "server" is neutralised', () => {
    for (const c of lt) {
      assert.ok(neutraliseServerOutputTags(`${c}/server-output`).startsWith('&lt;'), `U+${c.codePointAt(0)?.toString(16)}`);
      assert.ok(neutraliseServerOutputTags(`${c}server-output node="x"`).startsWith('&lt;'), `U+${c.codePointAt(0)?.toString(16)}`);
    }
  });

  test('each closing bracket after "output" is neutralised', () => {
    for (const c of gt) assert.ok(neutraliseServerOutputTags(`/server-output${c}`).endsWith('&gt;'), `U+${c.codePointAt(0)?.toString(16)}`);
  });

  test('each slash look-alike between bracket and name is passed over', () => {
    for (const c of slash) assertOnlyTheRealTags(`<${c}server-output>`);
  });

  test('each invisible character is passed over between bracket, slash and letters', () => {
    for (const c of invisible) {
      assert.ok(neutraliseServerOutputTags(`<${c}/server`).startsWith('&lt;'), `U+${c.codePointAt(0)?.toString(16)}`);
      assert.ok(neutraliseServerOutputTags(`</${c}server`).startsWith('&lt;'), `U+${c.codePointAt(0)?.toString(16)}`);
      assert.ok(neutraliseServerOutputTags(`</s${c}e${c}rver`).startsWith('&lt;'), `U+${c.codePointAt(0)?.toString(16)}`);
      assert.ok(neutraliseServerOutputTags(`outp${c}ut${c}>`).endsWith('&gt;'), `U+${c.codePointAt(0)?.toString(16)}`);
    }
  });

  test('each form of each letter is read as that letter', () => {
    for (const [letter, forms] of letterForms) {
      for (const f of forms) {
        const name = 'server'.replaceAll(letter, f);
        if (name !== 'server') assert.ok(neutraliseServerOutputTags(`</${name}`).startsWith('&lt;'), `U+${f.codePointAt(0)?.toString(16)} for ${letter}`);
        const tail = 'output'.replaceAll(letter, f);
        if (tail !== 'output') assert.ok(neutraliseServerOutputTags(`-${tail}>`).endsWith('&gt;'), `U+${f.codePointAt(0)?.toString(16)} for ${letter}`);
      }
    }
  });
});

describe('random tags built from the classes (property)', () => {
  const pick = (xs: readonly string[]) => fc.constantFrom(...xs);
  const ltA = pick([...lt]);
  const gtA = pick([...gt]);
  const filler = fc.array(fc.oneof(pick(invisible), pick([...slash])), { maxLength: 3 }).map((xs) => xs.join(''));
  const gap = fc.array(pick(invisible), { maxLength: 2 }).map((xs) => xs.join(''));
  const word = (w: string) =>
    fc.tuple(...[...w].map((c) => fc.tuple(pick(letterForms.get(c) ?? [c]), gap))).map((parts) => parts.map(([l, g]) => l + g).join(''));
  const tag = fc
    .tuple(fc.option(ltA, { nil: '' }), filler, word('server'), fc.constantFrom('-', '_', ' ', '', '\u2010', '\uFF0D'), word('output'), gap, fc.option(gtA, { nil: '' }))
    .map((parts) => parts.join(''));
  const noise = fc.string({ unit: fc.oneof(pick([...lt]), pick([...gt]), pick(invisible), fc.constantFrom('a', ' ', '\n', '"', 's', '=')), maxLength: 8 });

  test('no forged or closed tag survives in any mix of tags and noise', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(tag, noise), { maxLength: 6 }), (parts) => {
        assertOnlyTheRealTags(parts.join(''));
      }),
      { seed: 20261201, numRuns: 1000 },
    );
  });

  test('text without brackets comes back unchanged', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 80 }), (text) => {
        const bare = [...text].filter((c) => !lt.has(c) && !gt.has(c) && !LESS_THAN_LIKE.has(c) && !GREATER_THAN_LIKE.has(c)).join('');
        return neutraliseServerOutputTags(bare) === bare;
      }),
      { seed: 7, numRuns: 1000 },
    );
  });
});

test('a megabyte of hostile output is neutralised in well under a second', () => {
  const chunk = '<\u200B/ｓerver-output>' + '\u200B'.repeat(40) + '>' + 'x'.repeat(30) + '<';
  const text = chunk.repeat(Math.ceil(1_000_000 / chunk.length));
  const started = Date.now();
  const out = neutraliseServerOutputTags(text);
  assert.ok(Date.now() - started < 1000, `${Date.now() - started} ms`);
  assert.ok(!out.includes('<\u200B/ｓ'));
});
