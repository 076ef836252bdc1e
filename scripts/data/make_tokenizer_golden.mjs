// Makes the golden token ids that tests/data/test_hf_tokenizer.cpp checks our
// GPT-NeoX-20B tokenizer against. The reference is Hugging Face's own Rust
// `tokenizers` library through its official Node binding (npm package
// `tokenizers`, version pinned in package.json), so the ids are the ones
// Hugging Face produces, not another reimplementation's.
//
// Usage (from the repository root, with ../shared beside it):
//   (cd scripts/data && npm ci)
//   node scripts/data/make_tokenizer_golden.mjs \
//        ../shared/data/20B_tokenizer.json ../shared/data/lambada_test.jsonl \
//        tests/data/golden/neox20b_golden.jsonl.zst
//
// Output: one JSON record per line, {"text": ..., "ids": [...], "decoded": ...},
// compressed with the zstd command-line tool (deterministic at a fixed level).
// The first records are sanity checks with ids known from the GPT-NeoX-20B
// model card and RWKV's own examples; the script stops if they differ.

import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync, renameSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { Tokenizer } = require('tokenizers');
const tokenizersVersion = require('tokenizers/package.json').version;

const [tokenizerPath, lambadaPath, outPath] = process.argv.slice(2);
if (!tokenizerPath || !lambadaPath || !outPath) {
  console.error('usage: node make_tokenizer_golden.mjs TOKENIZER_JSON LAMBADA_JSONL OUT.jsonl.zst');
  process.exit(2);
}
const LAMBADA_PASSAGES = 2000;

const tokenizer = Tokenizer.fromFile(tokenizerPath);

async function encodeIds(text) {
  // addSpecialTokens=false: GPT-NeoX-20B has no post-processor tokens anyway.
  const encoding = await tokenizer.encode(text, null, { addSpecialTokens: false });
  return Array.from(encoding.getIds());
}
async function decodeIds(ids) {
  return await tokenizer.decode(ids, false);
}

// ---- sanity: the reference must behave like Hugging Face's GPT-NeoX-20B ----
// "\nThe following is a" -> [187, 510, 1563, 310, 247] is ChatRWKV's README example
// for the 20B tokenizer, "Hello world" -> [12092, 1533] is the usual GPT-NeoX
// example, and token 0 is <|endoftext|>.
const knownIds = [
  ['Hello world', [12092, 1533]],
  ['\nThe following is a', [187, 510, 1563, 310, 247]],
  ['<|endoftext|>', [0]],
];
for (const [text, expected] of knownIds) {
  const got = await encodeIds(text);
  if (JSON.stringify(got) !== JSON.stringify(expected)) {
    console.error(`reference tokenizer disagrees with known ids for ${JSON.stringify(text)}: ` +
                  `got ${JSON.stringify(got)}, expected ${JSON.stringify(expected)}`);
    process.exit(1);
  }
}

// ---- hard strings: every branch of the pre-tokenizer and the normalizer ----
const hard = [
  '', ' ', '  ', '\n', '\n\n', '\r\n', '\t', ' \t ', 'a', ' a', 'a ', '  a', 'a  ', 'a  b', 'a   b', 'a\t\tb',
  'a \n b', 'a\n\n\nb', 'word\n', '  leading and trailing  ', ' '.repeat(40) + 'x', 'x' + ' '.repeat(37),
  'indent\n    four\n        eight\n\ttab\n', '\u00a0nbsp\u00a0 \u00a0', 'ideographic\u3000space\u3000\u3000x',
  'line\u2028sep\u2029para', 'nel\u0085next', 'zero\u200bwidth\u200cjoiners\u200d',
  // digits
  '0', '1234567890', '3.14159', '1,000,000', '2024-05-17', 'v1.2.3', 'x86_64', '٣٤٥ ١٢', '①②③ ½ ²³',
  'Ⅻ roman', '12abc34', 'abc 123 def', '  42  ',
  // contractions and quotes
  "it's", "I'll", "we're", "they've", "I'm", "he'd", "don't", "IT'S", "I'LL", "'s", "''s", "x's's",
  "rock 'n' roll", 'it\u2019s curly', "'hello'", '"quoted"', "O'Neil's", "'ll've 'd'm",
  // CJK, scripts, emoji
  '日本語のテキストです。', '中文测试，包括标点符号！', '한국어 텍스트', 'Привет, мир!', 'Γειά σου Κόσμε',
  'مرحبا بالعالم', 'שלום עולם', 'नमस्ते दुनिया', 'สวัสดีชาวโลก', 'ქართული', 'Ελληνικά και English mixed',
  '😀', '😀😃😄', 'emoji 👍🏽 skin', 'family 👨‍👩‍👧‍👦 zwj', 'flags 🇫🇷🇩🇪', '❤️ ✔︎', '𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝟙𝟚𝟛',
  '🦀 rust and 🐍 python',
  // combining marks and normalization (NFC composes, NFKC would not be used)
  'cafe\u0301', 'e\u0301e\u0300e\u0302', 'A\u030a ring', '\u1100\u1161\u11a8', 'ﬁ ligature', 'Å Å',
  'a\u0308\u0301 stacked', 'Z\u0351\u0352\u0353 zalgo', '\u0301 leading mark', 'q\u0323\u0307',
  'n\u0303o', 'Ä ä Ö ö Ü ü ß', 'ḱṷṓn',
  // punctuation and symbols
  'Hello, world!', '...', '?!?!', '--- ***', '(parens) [brackets] {braces}', '<html><body>x</body></html>',
  'a+b=c', 'email@example.com', 'https://example.com/path?q=1&r=2#frag', '#hashtag @mention',
  '$100 €50 £20 ¥1000', '© ® ™ § ¶', '→ ← ↑ ↓ ⇒', '∀x∈ℝ: x²≥0', '“smart quotes” ‘single’', '— – -',
  'C:\\Windows\\path', 'tab\tseparated\tvalues', 'semi;colon:colon', '\u0007bell\u001bescape',
  // added tokens: specials and the runs of spaces
  'before<|endoftext|>after', '<|endoftext|><|endoftext|>', '<|padding|>', 'x <|endoftext|> y',
  '<|endoftext', 'endoftext|>', '<|endoftext|>\n\n',
  // code
  'def f(x):\n    return x + 1\n', 'int main() {\n\treturn 0;\n}\n', '    if (a && b) { c(); }',
  'for (int i = 0; i < n; ++i)', '// comment\n/* block */', '"""docstring"""', 'x = [1, 2, 3]',
];
for (let n = 1; n <= 32; ++n) {
  hard.push(' '.repeat(n));
  hard.push('a' + ' '.repeat(n) + 'b');
  hard.push('\n' + ' '.repeat(n) + 'x');
}

// Deterministic mixtures of the pieces above catch interactions between
// branches (a seeded linear congruential generator, not Math.random).
let seed = 12345;
function nextRandom() {
  seed = (seed * 1103515245 + 12345) % 2147483648;
  return seed;
}
const atoms = ['a', 'The', ' cat', "'s", "'ll", ' ', '  ', '\t', '\n', '1', '23', '.', ',', '!', '日本', '😀',
               'e\u0301', '\u00a0', '<|endoftext|>', '—', 'é', '٣', 'Ω', 'ﬁ', '\r\n', '"', "'", '-', '$'];
for (let i = 0; i < 300; ++i) {
  let text = '';
  const pieces = 1 + (nextRandom() % 12);
  for (let j = 0; j < pieces; ++j) text += atoms[nextRandom() % atoms.length];
  hard.push(text);
}

// ---- LAMBADA passages: real English prose ----
const lambada = readFileSync(lambadaPath, 'utf8').split('\n').filter((line) => line.length > 0)
  .slice(0, LAMBADA_PASSAGES).map((line) => JSON.parse(line).text);

let out = '';
const header = { reference: `tokenizers (npm) ${tokenizersVersion}`, tokenizer: '20B_tokenizer.json',
                 hard_strings: hard.length, lambada_passages: lambada.length };
out += JSON.stringify({ header }) + '\n';
for (const text of [...hard, ...lambada]) {
  const ids = await encodeIds(text);
  const decoded = await decodeIds(ids);
  out += JSON.stringify({ text, ids, decoded }) + '\n';
}

const plainPath = outPath.replace(/\.zst$/, '');
writeFileSync(plainPath, out);
execFileSync('zstd', ['-q', '-f', '-19', '--rm', plainPath, '-o', outPath + '.tmp']);
renameSync(outPath + '.tmp', outPath);
console.log(`wrote ${hard.length} hard strings and ${lambada.length} LAMBADA passages to ${outPath} ` +
            `(reference: tokenizers ${tokenizersVersion})`);
