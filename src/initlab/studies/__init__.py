"""Studies built on the core: the post's experiment, sweeps, figures and reports.

Unlike the core, these modules may import scikit-learn, matplotlib and tqdm.
"""
