#!/usr/bin/env bash
# Installs only the 'fuzz' package sets of scripts/install-deps.sh (which
# `make deps` runs with every set); kept for the tests' hints.
exec bash "$(dirname "$0")/install-deps.sh" fuzz
