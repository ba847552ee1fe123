"""Reference solution of exercises/task1_chain_rule.py."""

import numpy as np


def chain_rule(x, y):
    a = x * y
    b = np.sin(a) + y
    f = a * b + np.exp(b)
    df_db = a + np.exp(b)                 # f's direct use of b
    df_da = b + df_db * np.cos(a)         # through a * b, and through b = sin(a) + y
    return {"f": f, "df_db": df_db, "df_da": df_da, "df_dx": df_da * y, "df_dy": df_da * x + df_db}
