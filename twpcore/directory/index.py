"""The in-memory search and reverse-lookup index of the directory service.

The store holds contacts (``contacts``, ``contact_numbers``); this index is rebuilt from
it, one *segment* per directory (per owner for private directories), whenever a sync,
a push or an edit changed that directory.  Segments are immutable: a rebuilt segment
replaces the old one in one assignment, so searches and reverse lookups never match half
a sync; a load that finishes after a newer one is not applied (``generation``).

A segment numbers its contacts by rank (sort key, then id): *ordinal* 0 is the first
contact by name.  It keeps, in compact ``array`` columns:

- ``ids`` and ``labels`` (last, first, company, VIP, e-mail) per ordinal;
- a word index: the sorted distinct words, and per word the ordinals that contain it
  (``starts``/``postings``), plus per ordinal the ids of its words (``fwd``), so a query
  word is a *prefix range* of word ids and checking a contact is a few integer compares;
- a number index: canonical keys (``+33155171889`` stored as the integer 33155171889,
  ``internal:1234`` as -11234) sorted, with the ordinal and number type of each; red-listed
  numbers sit in a separate index that only the call enrichment reads (guide 8.2.4).

Search walks segments in priority order and stops as soon as a page is full, so its cost
depends on the page, not on the number of contacts.  See ``docs/directories.md``.
"""

from __future__ import annotations

import bisect
import gc
import heapq
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import attrs

from twpcore.directory.fields import NUMBER_FIELDS, fold

SEP = "\x1f"
DENSE = 4096
"""Above this many postings for the rarest query word, a segment is scanned in rank order instead."""
TYPE_CODES = {name: i for i, name in enumerate(NUMBER_FIELDS)}


def encode_key(key: str) -> int | str:
    """A canonical key as a compact integer when possible (``+33…`` → 33…, ``internal:12`` → -112)."""
    if key.startswith("+"):
        digits = key[1:]
        if digits.isdigit() and digits.isascii() and len(digits) <= 18:
            return int(digits)
    elif key.startswith("internal:"):
        digits = key[9:]
        if digits.isdigit() and digits.isascii() and len(digits) <= 17:
            return -int("1" + digits)
    return key


def _upper(term: str) -> str:
    return term[:-1] + chr(ord(term[-1]) + 1)


@attrs.frozen
class SegmentInfo:
    """What the service knows of a segment's directory."""

    directory_id: int
    owner_id: int | None
    name: str
    priority: int
    merge: bool
    domain_id: int
    company_id: int
    type: str

    @property
    def key(self) -> tuple[int, int | None]:
        return (self.directory_id, self.owner_id)

    @property
    def rank(self) -> tuple[int, str, int, int]:
        return (self.priority, fold(self.name), self.directory_id, self.owner_id or 0)


class _NumberIndex:
    __slots__ = ("keys", "ords", "other", "types")

    def __init__(self, entries: list[tuple[int | str, int, int]]):
        ints = sorted((k, o, t) for k, o, t in entries if isinstance(k, int))
        self.keys = array("q", (e[0] for e in ints))
        self.ords = array("i", (e[1] for e in ints))
        self.types = array("b", (e[2] for e in ints))
        self.other: dict[str, list[tuple[int, int]]] = {}
        for k, o, t in entries:
            if isinstance(k, str):
                self.other.setdefault(k, []).append((o, t))
        for hits in self.other.values():
            hits.sort()

    def find(self, key: int | str) -> list[tuple[int, int]]:
        """(ordinal, type code) pairs of a key, best ordinal first."""
        if isinstance(key, str):
            return self.other.get(key, [])
        i = bisect.bisect_left(self.keys, key)
        out = []
        n = len(self.keys)
        while i < n and self.keys[i] == key:
            out.append((self.ords[i], self.types[i]))
            i += 1
        return out

    def __len__(self) -> int:
        return len(self.keys) + sum(len(v) for v in self.other.values())


class Segment:
    """The index of one directory (or one owner's contacts in a private directory)."""

    def __init__(self, info: SegmentInfo, contacts: Sequence[Sequence[Any]], numbers: Iterable[Sequence[Any]]):
        """``contacts``: (id, last, first, company, email_key, vip, search_text) sorted by rank;
        ``numbers``: (contact_id, type, key, redlisted)."""
        self.info = info
        n = len(contacts)
        self.ids = array("q", (c[0] for c in contacts))
        self.labels = [SEP.join((c[1], c[2], c[3], c[5], c[4])) for c in contacts]
        postings: dict[str, list[int]] = {}
        per_contact: list[list[str]] = []
        for ordinal, c in enumerate(contacts):
            toks = c[6].split()
            per_contact.append(toks)
            for tok in toks:
                lst = postings.get(tok)
                if lst is None:
                    postings[tok] = [ordinal]
                elif lst[-1] != ordinal:
                    lst.append(ordinal)
        self.tokens = sorted(postings)
        tid = {tok: i for i, tok in enumerate(self.tokens)}
        starts = array("i", [0])
        flat = array("i")
        for tok in self.tokens:
            flat.extend(postings[tok])
            starts.append(len(flat))
        self.starts, self.postings = starts, flat
        fwd_starts = array("i", [0])
        fwd = array("i")
        for toks in per_contact:
            fwd.extend(sorted({tid[t] for t in toks}))
            fwd_starts.append(len(fwd))
        self.fwd_starts, self.fwd = fwd_starts, fwd
        ordinal_of = {cid: i for i, cid in enumerate(self.ids)}
        shown: list[tuple[int | str, int, int]] = []
        red: list[tuple[int | str, int, int]] = []
        for contact_id, typ, key, redlisted in numbers:
            o = ordinal_of.get(contact_id)
            if o is None or not key:
                continue
            (red if redlisted else shown).append((encode_key(key), o, TYPE_CODES.get(typ, len(NUMBER_FIELDS) - 2)))
        self.numbers = _NumberIndex(shown)
        self.redlisted = _NumberIndex(red)
        self.emails: dict[str, int] = {}
        if info.merge:
            for ordinal, c in enumerate(contacts):
                if c[4]:
                    self.emails.setdefault(c[4], ordinal)
        self.size = n
        self.fingerprint: str | None = None
        """Digest of the store rows the segment was built from (``db.load_segments``), for snapshots."""

    def __getstate__(self) -> dict[str, Any]:
        # Millions of small strings would each take a slot in pickle's memo: store them as one string and lengths.
        state = {k: v for k, v in self.__dict__.items() if k != "emails"}
        for name in ("labels", "tokens"):
            items = state[name]
            state[name] = (array("i", map(len, items)), "".join(items))
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        for name in ("labels", "tokens"):
            lengths, text = state[name]
            items, pos = [], 0
            for n in lengths:
                items.append(text[pos:pos + n])
                pos += n
            state[name] = items
        self.__dict__.update(state)
        self.emails = self._emails() if self.info.merge else {}

    def rebind(self, info: SegmentInfo) -> Segment:
        """The segment under its directory's current settings (a snapshot's segment, after a restart)."""
        if info.merge != self.info.merge:
            self.emails = self._emails() if info.merge else {}
        self.info = info
        return self

    def _emails(self) -> dict[str, int]:
        """First ordinal of each e-mail (merge directories, guide 8.2.2)."""
        emails: dict[str, int] = {}
        for ordinal in range(self.size):
            email = self.email(ordinal)
            if email:
                emails.setdefault(email, ordinal)
        return emails

    # -- reading ---------------------------------------------------------------------
    def label(self, ordinal: int) -> dict[str, str]:
        last, first, company, vip, email = self.labels[ordinal].split(SEP)
        return {"last_name": last, "first_name": first, "company": company, "vip": vip, "email": email}

    def sort_key(self, ordinal: int) -> str:
        last, first, company, _, _ = self.labels[ordinal].split(SEP)
        name = " ".join(p for p in (last, first) if p) or company
        return fold(name)[:100]

    def email(self, ordinal: int) -> str:
        return self.labels[ordinal].rsplit(SEP, 1)[1]

    def _range(self, term: str) -> tuple[int, int]:
        lo = bisect.bisect_left(self.tokens, term)
        hi = bisect.bisect_left(self.tokens, _upper(term), lo)
        return lo, hi

    def _has(self, ordinal: int, lo: int, hi: int) -> bool:
        fwd = self.fwd
        for i in range(self.fwd_starts[ordinal], self.fwd_starts[ordinal + 1]):  # noqa: SIM110 - hot path: faster than any() on a generator
            if lo <= fwd[i] < hi:
                return True
        return False

    def match(self, terms: Sequence[str]) -> Iterator[int]:
        """Ordinals of contacts having, for every term, a word starting with it; in rank order."""
        if not terms or not self.size:
            return
        ranges = []
        for term in terms:
            lo, hi = self._range(term)
            if lo >= hi:
                return
            ranges.append((self.starts[hi] - self.starts[lo], lo, hi))
        ranges.sort()
        count, lo, hi = ranges[0]
        rest = ranges[1:]
        if count <= DENSE or count * 8 <= self.size:
            if hi - lo == 1:
                candidates: Iterable[int] = self.postings[self.starts[lo]:self.starts[hi]]
            else:
                candidates = sorted(set(self.postings[self.starts[lo]:self.starts[hi]]))
            for o in candidates:
                if all(self._has(o, l2, h2) for _, l2, h2 in rest):
                    yield o
            return
        checks = [(l2, h2) for _, l2, h2 in ranges]
        for o in range(self.size):
            if all(self._has(o, l2, h2) for l2, h2 in checks):
                yield o

    def find_number(self, keys: Sequence[int | str], redlisted: bool = False) -> tuple[int, int, bool] | None:
        """The best (ordinal, type code, red-listed) for the first key that matches."""
        for key in keys:
            hits = self.numbers.find(key)
            red = self.redlisted.find(key) if redlisted else []
            best = min([(o, t, False) for o, t in hits] + [(o, t, True) for o, t in red], default=None)
            if best is not None:
                return best
        return None

    def numbers_all(self, keys: Sequence[int | str]) -> list[int]:
        """Every ordinal (rank order) with a shown (not red-listed) number under one of the keys."""
        found: set[int] = set()
        for key in keys:
            found.update(o for o, _ in self.numbers.find(key))
        return sorted(found)


Hit = tuple[Segment, int]


def _keyed(seg: Segment, n: int, ordinals: Iterable[int]) -> Iterator[tuple[str, int, Segment, int]]:
    for o in ordinals:
        yield seg.sort_key(o), n, seg, o


class DirectoryIndex:
    """Every segment, by (directory id, owner id)."""

    def __init__(self) -> None:
        self.segments: dict[tuple[int, int | None], Segment] = {}
        self.generations: dict[tuple[int, Any], int] = {}
        """Generation of the load last applied, per (directory, owner) and per (directory, ``...``) for whole directories."""

    def replace(self, directory_id: int, segments: list[Segment], owner_id: Any = ..., generation: int | None = None) -> bool:
        """Swap in a directory's new segments (all owners, or only ``owner_id``'s); return whether they were applied.

        ``generation`` is the number the service drew *before* reading the segments from
        the store (it grows with every load).  A load is applied only when no load drawn
        later was applied already: loads run in a thread pool and may finish out of order,
        and an older load must never replace the newer segment (it would bring back
        contacts or numbers a later sync changed).  A whole-directory load keeps the
        segments of owners reloaded after it was drawn.

        The segments are then moved out of the garbage collector's sight (``gc.freeze``):
        they are long-lived and hold no reference cycles (refcounting frees a replaced
        one), and a full collection scanning millions of index objects would pause the
        event loop for tens of milliseconds.
        """
        newer: set[Any] = set()
        if generation is not None:
            whole = self.generations.get((directory_id, ...), 0)
            if generation <= whole or (owner_id is not ... and generation <= self.generations.get((directory_id, owner_id), 0)):
                return False
            if owner_id is ...:
                newer = {owner for (did, owner), g in self.generations.items() if did == directory_id and owner is not ... and g > generation}
            self.generations[(directory_id, owner_id)] = generation
        if owner_id is ...:
            keep = {k: s for k, s in self.segments.items() if k[0] != directory_id or k[1] in newer}
        else:
            keep = {k: s for k, s in self.segments.items() if k != (directory_id, owner_id)}
        for seg in segments:
            if seg.size and seg.info.owner_id not in newer:
                keep[seg.info.key] = seg
        self.segments = keep
        gc.freeze()
        return True

    def drop(self, directory_id: int, generation: int | None = None) -> None:
        """Forget a deleted directory (unless a load drawn after ``generation`` was applied)."""
        self.replace(directory_id, [], ..., generation)

    def visible(self, directories: Iterable[int], owner_id: int | None, private: set[int]) -> list[Segment]:
        """Segments of these directories (a private directory: only ``owner_id``'s), by rank."""
        segs = []
        for d in directories:
            seg = self.segments.get((d, owner_id if d in private else None))
            if seg is not None:
                segs.append(seg)
        segs.sort(key=lambda s: s.info.rank)
        return segs

    @property
    def contacts(self) -> int:
        return sum(s.size for s in self.segments.values())

    # -- queries ---------------------------------------------------------------------
    def search(self, segments: list[Segment], streams: Callable[[Segment], Iterable[int]], offset: int, limit: int) -> tuple[list[Hit], bool]:
        """One page of hits (and whether more exist), ranked by priority then name.

        Contacts of merge directories that share an e-mail with a better-ranked visible
        contact of another merge directory are folded into it (guide 8.2.2).
        """
        merged = [s for s in segments if s.info.merge and s.emails]
        out: list[Hit] = []
        wanted = offset + limit + 1
        skipped = 0
        i = 0
        while i < len(segments) and len(out) + skipped < wanted:
            j = i
            while j < len(segments) and segments[j].info.priority == segments[i].info.priority:
                j += 1
            group = segments[i:j]
            i = j
            if len(group) == 1:
                seg = group[0]
                merged_stream: Iterable[tuple[Any, ...]] = ((None, 0, seg, o) for o in streams(seg))
            else:
                merged_stream = heapq.merge(*(_keyed(seg, n, streams(seg)) for n, seg in enumerate(group)), key=lambda t: (t[0], t[1], t[3]))
            for _, _, seg, o in merged_stream:
                if merged and seg.info.merge and self._folded(seg, o, merged):
                    continue
                if skipped < offset:
                    skipped += 1
                    continue
                out.append((seg, o))
                if len(out) + skipped >= wanted:
                    break
        more = len(out) > limit
        return out[:limit], more

    @staticmethod
    def _folded(seg: Segment, ordinal: int, merged: list[Segment]) -> bool:
        email = seg.email(ordinal)
        if not email:
            return False
        for other in merged:
            if other is seg:
                return False  # segments are in rank order: nothing better holds this e-mail
            if email in other.emails:
                return True
        return False

    def reverse(self, segments: list[Segment], keys: Sequence[str], redlisted: bool = False) -> tuple[Segment, int, str, bool] | None:
        """The highest-priority contact with a number under one of ``keys``: (segment, ordinal, number type, red-listed)."""
        encoded = [encode_key(k) for k in keys]
        for seg in segments:
            hit = seg.find_number(encoded, redlisted)
            if hit is not None:
                return seg, hit[0], NUMBER_FIELDS[hit[1]], hit[2]
        return None

    def members(self, segments: list[Segment], email: str) -> list[Hit]:
        """Visible contacts of merge directories with this e-mail, best first."""
        out = []
        for seg in segments:
            if seg.info.merge and email:
                o = seg.emails.get(email)
                if o is not None:
                    out.append((seg, o))
        return out
