"""Scale out on Ray (the ``ray`` extra): ``winnow index --ray`` and ``winnow serve --ray``.

Nothing here is imported unless one of those runs: ``cluster`` connects, ``indexing`` embeds on an
actor pool and writes through the index's own single writer, ``serving`` runs ``winnow serve``'s app on
Ray Serve. Each module imports ``ray`` at the top, inside ``require_extra``, so a missing extra is one
line naming ``pip install 'winnow[ray]'``.
"""
