"""Driver side of a cluster: what the cluster can hold (``capacity``) and whether it is fit to train (``doctor``)."""
