"""Where data comes from: the catalog, downloads, local files, the decoded cache, `Source`."""
