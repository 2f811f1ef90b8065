#!/usr/bin/env bash
# The collection's docs site: lint the collection's docs, then build the site with antsibull-docs and Sphinx.
#   scripts/docs.sh [DEST]       DEST defaults to build/docs; the site lands in DEST/build/html (index.html)
#   scripts/docs.sh --lint-only  the lint alone (quicker)
# Both steps fail on any problem: antsibull-docs lint-collection-docs checks the plugins' and the role's
# documentation (schema, markup, every reference) and the extra docs in docs/docsite/; sphinx-build runs
# with -W, so a warning fails the build. The tools come from .venv-test (scripts/setup.sh test), or from
# the virtualenv PORTWARDEN_DOCS_VENV names. Nothing is fetched: Ansible's own docs are linked through an
# inventory written here (scripts/docs_inventory.py), not downloaded.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=${PORTWARDEN_DOCS_VENV:-$ROOT/.venv-test}
LINT_ONLY=false
if [ "${1:-}" = --lint-only ]; then LINT_ONLY=true; shift; fi
DEST=${1:-$ROOT/build/docs}

log() { printf '[docs] %s\n' "$*" >&2; }

for tool in antsibull-docs sphinx-build ansible-doc python; do
  [ -x "$VENV/bin/$tool" ] || { log "no $VENV/bin/$tool: run scripts/setup.sh test first"; exit 2; }
done
export PATH="$VENV/bin:$PATH"

# Ansible finds this checkout, and only it, as portwarden.compliance (not a copy installed in a venv).
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/collections/ansible_collections/portwarden"
ln -s "$ROOT" "$work/collections/ansible_collections/portwarden/compliance"
export ANSIBLE_COLLECTIONS_PATH="$work/collections" ANSIBLE_COLLECTIONS_SCAN_SYS_PATH=false
export ANSIBLE_HOME="$work/ansible" ANSIBLE_NOCOLOR=1

log "lint: antsibull-docs lint-collection-docs --plugin-docs"
antsibull-docs lint-collection-docs --plugin-docs --check-extra-docs-refs \
  --validate-collection-refs all --disallow-unknown-collection-refs \
  "$work/collections/ansible_collections/portwarden/compliance"
$LINT_ONLY && exit 0

log "build: antsibull-docs sphinx-init, then sphinx-build -W into $DEST"
rm -rf "$DEST"
mkdir -p "$(dirname "$DEST")"
mkdir -m 0755 "$DEST"  # antsibull-docs wants a directory only its owner may write
antsibull-docs sphinx-init --use-current --squash-hierarchy --fail-on-error --dest-dir "$DEST" \
  --project portwarden.compliance --copyright 'portwarden contributors' \
  --title 'portwarden.compliance' --html-short-title 'portwarden.compliance' \
  portwarden.compliance >/dev/null
python scripts/docs_inventory.py "$DEST/ansible_devel.inv"
cat >> "$DEST/conf.py" <<EOF

# scripts/docs.sh: the build is offline. Ansible's docs are linked through the inventory written beside
# this file, and nothing else is looked up (the defaults above would download from four hosts).
intersphinx_mapping = {
    'ansible_devel': ('https://docs.ansible.com/projects/ansible/devel/', '$DEST/ansible_devel.inv'),
}
EOF
"$DEST/build.sh"
log "site: $DEST/build/html/index.html"
