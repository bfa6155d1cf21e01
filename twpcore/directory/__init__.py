"""The directory service (guide chapter 8): directories, synchronization, search and reverse lookup.

- :mod:`twpcore.directory.fields`: standard fields, field options (guide 8.1), mapping of a
  source record to a contact, ``SkippedRecord`` for connectors;
- :mod:`twpcore.directory.index`: reverse lookup and contact counts, served from the store;
- :mod:`twpcore.directory.search`: search, served from the store;
- :mod:`twpcore.directory.writer`: the streaming sync writer;
- :mod:`twpcore.directory.db`: store access (contacts written in batches, rights);
- :mod:`twpcore.directory.scheduler`, :mod:`twpcore.directory.private`: parts of the service;
- :mod:`twpcore.directory.service`: ``DirectoryService`` (``kernel.directories``).

Connector authors need only ``twpcore.kinds`` (``DirectoryConnector``, ``SourceRecord``,
``NotReady``, ``AuthFailed``, ``ConnectorError``) and, to report an unreadable entry,
:class:`SkippedRecord`; ``user_value`` reads the user a private directory's ``records(user)`` is given.
``docs/directories.md`` is the admin and author guide.
"""

from twpcore.directory.fields import NUMBER_FIELDS, PRIVATE_FIELDS, TEXT_FIELDS, MappingError, SkippedRecord, user_value

__all__ = ["NUMBER_FIELDS", "PRIVATE_FIELDS", "TEXT_FIELDS", "MappingError", "SkippedRecord", "user_value"]
