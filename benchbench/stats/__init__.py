"""Pure statistics on records (pandas frames in, frames out, no files): summaries with
intervals, pairwise verdicts, ranks, expected best of a budget. Imports: api."""
