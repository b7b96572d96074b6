"""The operators' dashboard (Plotly Dash). It only reads projections."""
