#!/usr/bin/env bash
# Prepare a release: the version in its one place, the changelog generated from the fragments.
#   scripts/release.sh VERSION     e.g. scripts/release.sh 0.2.0
# 1. galaxy.yml's `version:` becomes VERSION. Everything else reads it there: pyproject.toml (hatch's
#    dynamic version), `portwarden --version` and every report's `tool` (plugin_utils/collection_version.py),
#    the MANIFEST.json of a built tarball and the docs site.
# 2. antsibull-changelog lints the fragments, then `release` moves them into changelogs/changelog.yaml
#    under VERSION (deleting them) and writes CHANGELOG.rst. Run again for a VERSION already there (say,
#    after merging branches that bring more fragments), it adds the new fragments to that release.
# 3. The changelog is linted. Review `git diff`, then commit; nothing is committed or tagged here.
# The tools come from .venv-test (scripts/setup.sh test), or from the virtualenv PORTWARDEN_RELEASE_VENV names.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${PORTWARDEN_RELEASE_VENV:-$PWD/.venv-test}
VERSION=${1:-}

log() { printf '[release] %s\n' "$*" >&2; }

if ! [[ $VERSION =~ ^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$ ]]; then
  log "usage: $0 VERSION, a semantic version such as 0.2.0 (got '${VERSION}')"
  exit 2
fi
[ -x "$VENV/bin/antsibull-changelog" ] || { log "no $VENV/bin/antsibull-changelog: run scripts/setup.sh test first"; exit 2; }
export PATH="$VENV/bin:$PATH"
[ "$(grep -c '^version:' galaxy.yml)" = 1 ] || { log "galaxy.yml: expected exactly one 'version:' line"; exit 2; }

log "fragments: antsibull-changelog lint"
antsibull-changelog lint
log "changelog: antsibull-changelog release --version $VERSION"
# Its plugin cache is keyed by version alone: a re-run for the same version after a merge would miss new plugins.
rm -f changelogs/.plugin-cache.yaml
antsibull-changelog release --version "$VERSION"
rm -f changelogs/.plugin-cache.yaml
log "galaxy.yml: version $VERSION"
sed -i -E "s/^version:.*/version: $VERSION/" galaxy.yml
antsibull-changelog lint-changelog-yaml changelogs/changelog.yaml
log "done: review git diff (galaxy.yml, changelogs/, CHANGELOG.rst), then commit"
