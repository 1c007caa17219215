"""Branch scores and bulletins: 月打分、季通报、年终结."""
