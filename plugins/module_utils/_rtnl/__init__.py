# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private: anything may change without notice.
"""The collection's one netlink layer (rtnetlink), below the engine.  No logic here; the files:

* ``namespace``: :class:`~.namespace.Namespace`, the handle the engine uses on one network namespace (reads,
  writes, errors that name the object), and the named namespaces themselves.  The only importer of pyroute2,
  for the writes it is best at (links, addresses, namespaces), lazily.
* ``link``: links, addresses and default routes read over the raw socket.
* ``neigh``: the neighbour and FDB tables in bulk over the raw socket (encode, decode, dump, write).
* ``sock``: the one raw NETLINK_ROUTE socket (opened inside a namespace), its dump loop and acknowledgements.
* ``wire``: the one reader of replies (message and attribute walkers).
* ``const``: every netlink number and header struct, once.
"""
