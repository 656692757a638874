"""The dependency tier: the public surface (signatures, outlines, docstrings) of the packages a
workspace imports, at the versions installed in its environment, so completion and answers see the
APIs the code really calls.

``python_env`` finds the environment and the distributions the workspace imports, ``surface``
turns a package's files into signature chunks, ``store`` keeps them in one database shared by every
workspace (keyed by ``name==version``, so a version is indexed once), ``build`` ties them together
for one workspace, ``lookup`` answers "what is ``np.einsum``" and keyword searches for the workspace's
packages.
"""
