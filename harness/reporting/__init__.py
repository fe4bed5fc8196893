"""Stage 5: tables, paired comparisons, figures, cost and the HTML report."""
