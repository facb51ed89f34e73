"""Great Expectations suites (as data) and the runner that turns a validation into an AssetCheckResult."""
