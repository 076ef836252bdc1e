#!/usr/bin/env bash
# Builds a few MB of real English text from Debian's own text packages, in the
# Pile's record layout, so that a fresh machine can prepare data and train
# with no download beyond Debian packages:
#
#   {"text": "...", "meta": {"pile_set_name": "Debian fortunes"}}   one record a line,
#   zstd-compressed (.jsonl.zst), as the Pile ships.
#
# Sources (Debian packages, English prose):
#   fortunes, fortunes-min   quotations, jokes, poems     one record per fortune
#   jargon-text              the Jargon File              records of ~8 KB at paragraph breaks
#   debian-reference-en      the Debian Reference         records of ~8 KB at paragraph breaks
#   debian-faq               the Debian FAQ               records of ~8 KB at paragraph breaks
#   gnu-standards            GNU Coding Standards         records of ~8 KB at paragraph breaks
#   doc-debian               Debian constitution, etc.    records of ~8 KB at paragraph breaks
#
# Deterministic: the same package versions give the same bytes (files are
# read in sorted order, LC_ALL=C, single-threaded zstd at a fixed level). The
# package versions used are written next to the output (.sources.txt).
#
# Usage: scripts/data/make_offline_corpus.sh [OUTPUT.jsonl.zst]
#        (default: data/corpus/offline_corpus.jsonl.zst; installs the packages
#        with apt-get when they are missing, which needs root)
set -euo pipefail
export LC_ALL=C

OUTPUT="${1:-data/corpus/offline_corpus.jsonl.zst}"
TEXT_PACKAGES=(fortunes fortunes-min jargon-text debian-reference-en debian-faq gnu-standards doc-debian)
TOOL_PACKAGES=(jq zstd)

missing=()
for package in "${TEXT_PACKAGES[@]}" "${TOOL_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if ((${#missing[@]} > 0)); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "make_offline_corpus: missing Debian packages: ${missing[*]}" >&2
    echo "  ---> HINT: run as root, or: sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
  fi
  echo "make_offline_corpus: installing ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Some container images tell dpkg to skip /usr/share/doc; the text must be there.
DOC_FILES=(/usr/share/doc/jargon-text/jargon.txt.gz /usr/share/debian-reference/debian-reference.en.txt.gz
           /usr/share/doc/debian/FAQ/debian-faq.en.txt.gz /usr/share/doc/gnu-standards/standards.text.gz
           /usr/share/doc/gnu-standards/maintain.text.gz /usr/share/doc/debian/constitution.txt.gz
           /usr/share/doc/debian/social-contract.txt.gz /usr/share/doc/debian/debian-manifesto.gz)
for file in "${DOC_FILES[@]}"; do
  if [[ ! -s "$file" ]]; then
    echo "make_offline_corpus: $file is missing although its package is installed" >&2
    echo "  ---> HINT: dpkg may be excluding /usr/share/doc (see /etc/dpkg/dpkg.cfg.d/); remove the path-exclude" \
         "line and reinstall the package with apt-get install --reinstall" >&2
    exit 1
  fi
done

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
records="$work/records.jsonl"
: >"$records"

# emit_records NAME: reads documents separated by the ASCII record separator
# (0x1E) on stdin and appends one JSON record per non-blank document.
emit_records() {
  jq -R -s -c --arg name "$1" \
    'split("\u001e")[] | select(test("\\S")) | {text: ., meta: {pile_set_name: $name}}' >>"$records"
}

# Fortunes: documents are separated by lines holding only "%".
fortune_files=()
while IFS= read -r file; do fortune_files+=("$file"); done < <(
  find /usr/share/games/fortunes -maxdepth 1 -type f ! -name '*.dat' ! -name '*.u8' | sort)
for file in "${fortune_files[@]}"; do
  awk '/^%$/ { printf "\036"; next } { print }' "$file"
  printf '\036'
done | emit_records "Debian fortunes"

# Long documents: paragraphs (blank-line separated) gathered into records of
# about 8 KB, so that a record is a readable stretch of one text.
chunk_paragraphs() {
  awk 'BEGIN { RS = ""; ORS = "" }
        { if (size > 0 && size + length($0) > 8000) { printf "\036"; size = 0 }
          if (size > 0) { printf "\n\n" }
          printf "%s", $0; size += length($0) + 2 }
        END { printf "\036" }'
}
zcat /usr/share/doc/jargon-text/jargon.txt.gz | chunk_paragraphs | emit_records "Jargon File"
zcat /usr/share/debian-reference/debian-reference.en.txt.gz | chunk_paragraphs | emit_records "Debian Reference"
zcat /usr/share/doc/debian/FAQ/debian-faq.en.txt.gz | chunk_paragraphs | emit_records "Debian FAQ"
zcat /usr/share/doc/gnu-standards/standards.text.gz /usr/share/doc/gnu-standards/maintain.text.gz |
  chunk_paragraphs | emit_records "GNU Coding Standards"
zcat /usr/share/doc/debian/constitution.txt.gz /usr/share/doc/debian/social-contract.txt.gz \
  /usr/share/doc/debian/debian-manifesto.gz | chunk_paragraphs | emit_records "Debian Project documents"

mkdir -p "$(dirname "$OUTPUT")"
zstd -q -19 -T1 -f "$records" -o "$OUTPUT.tmp"
mv -f "$OUTPUT.tmp" "$OUTPUT"

{
  echo "# Made by scripts/data/make_offline_corpus.sh from these Debian packages:"
  for package in "${TEXT_PACKAGES[@]}"; do dpkg-query -W -f='${Package} ${Version}\n' "$package"; done
  echo "# records by pile_set_name:"
  jq -r '.meta.pile_set_name' "$records" | sort | uniq -c | sed 's/^ *//'
} >"${OUTPUT%.jsonl.zst}.sources.txt"

echo "make_offline_corpus: wrote $OUTPUT: $(wc -l <"$records") records, $(wc -c <"$records") bytes of JSONL," \
     "$(wc -c <"$OUTPUT") compressed" >&2
