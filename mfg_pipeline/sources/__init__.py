"""One folder per vendor; each exports `SOURCE`, a `SourceSystem`. `ALL_SOURCES` is what the pipeline loads."""
