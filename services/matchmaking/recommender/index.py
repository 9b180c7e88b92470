"""The recommender's index: organisations, past projects and ties, kept ready for fast scoring.

Rows are numbered in arrival order and never reused until `rebuild()`, so every array and matrix
below is addressed by the same row number. What changes how, and what it costs:

- an organisation added or updated: its structured fields are written into numpy arrays at once;
  its text vector is computed on the next query (one `transform` of the changed rows, kept in a
  small patch beside the consolidated matrix). The text model's vocabulary and IDF are refitted
  only when more than `refit_fraction` of the documents changed since the last fit, or when the
  index is small (under `small_index` documents, where a refit costs milliseconds): a new word
  counts from the next refit, a new organisation counts at once.
- a tie (registry connection, accepted interest, B2B follow-up) added or removed: the next query
  re-adds the tie matrix to the cached project matrices and renormalises the walk (sums over the
  non-zeros, no matrix products: tens of milliseconds at 50,000 organisations).
- a project added or removed: recorded in append-only arrays; the next query rebuilds the
  project matrices (sparse products, vectorised: under a second at 50,000 organisations and
  30,000 projects). Either way a burst of events costs one rebuild, and adding an organisation
  touches neither.
- an organisation removed: its row is masked out of results at once; it still links its former
  partners (the projects happened) until `rebuild()` compacts the index.

Not thread-safe: one caller at a time (the service's feed holds a lock around it).
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from services.registry.vocabulary import Competency, OrganisationKind, ValueChainStage

from .model import COORDINATOR, Organisation, Project, TieKind
from .text import TextModel, TfidfTextModel

KINDS: tuple[str, ...] = tuple(OrganisationKind)
_KIND_CODE = {k: i for i, k in enumerate(KINDS)}
UNKNOWN_KIND = len(KINDS)
COMPETENCY_BITS = {c.value: 1 << i for i, c in enumerate(Competency)}
STAGE_BITS = {s.value: 1 << i for i, s in enumerate(ValueChainStage)}
MAX_PROJECT_TEXTS = 30  # per profile: an organisation with 200 projects is not 200x more relevant


def _bits(values: Iterable[str], table: dict[str, int]) -> int:
    return sum(table.get(v, 0) for v in set(values))


def is_sparse(matrix: Any) -> bool:
    return sp.issparse(matrix)


def dense_row(vector: Any) -> np.ndarray:
    """A (1, dim) sparse or dense row as a flat float32 array."""
    if is_sparse(vector):
        return np.asarray(vector.toarray(), dtype=np.float32).ravel()
    return np.asarray(vector, dtype=np.float32).ravel()


class VectorStore:
    """Row vectors with cheap replacement: a consolidated base matrix plus a small patch.

    Scoring a query is `base @ q` plus `patch @ q` written over the patched rows, so replacing a
    few rows never copies the whole matrix; the patch is folded into the base when it grows past
    `max(1024, 5%)` of the rows (one row gather, O(non-zeros)).
    """

    def __init__(self) -> None:
        self.base: Any = None
        self._postings: Any = None  # the base by column (CSC): a query reads only its terms' postings
        self.patch: Any = None
        self.patch_rows = np.zeros(0, dtype=np.int64)
        self._patch_pos: dict[int, int] = {}

    def reset(self, matrix: Any) -> None:
        self.base, self.patch = matrix, None
        self._postings = matrix.tocsc() if is_sparse(matrix) else None
        self.patch_rows = np.zeros(0, dtype=np.int64)
        self._patch_pos = {}

    @property
    def base_rows(self) -> int:
        return 0 if self.base is None else self.base.shape[0]

    def set_rows(self, rows: Sequence[int], matrix: Any) -> None:
        rows_arr = np.asarray(rows, dtype=np.int64)
        if self.patch is not None:
            keep = np.flatnonzero(~np.isin(self.patch_rows, rows_arr))
            old_rows, old = self.patch_rows[keep], self.patch[keep]
            rows_arr = np.concatenate([old_rows, rows_arr])
            matrix = sp.vstack([old, matrix], format="csr") if is_sparse(matrix) else np.vstack([old, matrix])
        self.patch, self.patch_rows = matrix, rows_arr
        self._patch_pos = {int(r): i for i, r in enumerate(rows_arr)}
        if len(rows_arr) > max(1024, self.base_rows // 20):
            self._consolidate()

    def _consolidate(self) -> None:
        n = max(self.base_rows, int(self.patch_rows.max()) + 1)
        dim = self.patch.shape[1]
        parts = [self.base] if self.base is not None else []
        parts += [self.patch, sp.csr_matrix((1, dim), dtype=np.float32) if is_sparse(self.patch)
                  else np.zeros((1, dim), dtype=np.float32)]
        stacked = sp.vstack(parts, format="csr") if is_sparse(self.patch) else np.vstack(parts)
        zero_row = stacked.shape[0] - 1
        source = np.full(n, zero_row, dtype=np.int64)
        source[: self.base_rows] = np.arange(self.base_rows)
        source[self.patch_rows] = self.base_rows + np.arange(len(self.patch_rows))
        self.reset(stacked[source])

    def scores(self, query: np.ndarray, n: int) -> np.ndarray:
        """Dot product of every row with a dense query vector; rows never set score 0."""
        out = np.zeros(n, dtype=np.float32)
        if self._postings is not None:
            terms = np.flatnonzero(query)
            if len(terms) < query.shape[0] // 4:
                out[: self.base_rows] = (self._postings[:, terms] @ query[terms])[:n]
            else:
                out[: self.base_rows] = np.asarray(self.base @ query).ravel()[:n]
        elif self.base is not None:
            out[: self.base_rows] = np.asarray(self.base @ query).ravel()[:n]
        if self.patch is not None:
            out[self.patch_rows] = np.asarray(self.patch @ query).ravel()
        return out

    def row(self, r: int) -> Any | None:
        pos = self._patch_pos.get(r)
        if pos is not None:
            return self.patch[pos]
        if r < self.base_rows:
            return self.base[r]
        return None

    def entries(self, r: int) -> tuple[np.ndarray, np.ndarray]:
        """(dimensions, values) of a row's non-zeros, sliced straight from the CSR arrays."""
        pos = self._patch_pos.get(r)
        matrix, i = (self.patch, pos) if pos is not None else (self.base, r)
        if matrix is None or i >= matrix.shape[0]:
            return np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.float32)
        if is_sparse(matrix):
            lo, hi = matrix.indptr[i], matrix.indptr[i + 1]
            return matrix.indices[lo:hi], matrix.data[lo:hi]
        values = np.asarray(matrix[i]).ravel()
        return np.flatnonzero(values), values[values != 0]

    def dense(self, r: int, dim: int) -> np.ndarray | None:
        columns, values = self.entries(r)
        if not len(columns):
            return None
        out = np.zeros(dim, dtype=np.float32)
        out[columns] = values
        return out


@dataclass
class Graph:
    """Collaboration matrices over rows [0, n): built together, read-only once built."""

    n: int
    incidence: sp.csr_matrix  # projects x orgs, 1 for a member of a live project
    memberships: sp.csr_matrix  # orgs x projects, the transpose (an org's projects in one slice)
    project_decay: np.ndarray  # per project row: 0.5 ** (age / half-life)
    count: sp.csr_matrix  # orgs x orgs: shared projects (+ co_project ties)
    recent: sp.csr_matrix  # same, each project weighted by its decay
    led: sp.csr_matrix  # decayed shared projects that one of the two coordinated
    ties: sp.csr_matrix  # connection, accepted interest, B2B follow-up weights
    walk: sp.csr_matrix  # row-stochastic (recent + ties): one random-walk step
    aa_weight: np.ndarray  # Adamic-Adar: 1 / log(2 + partner count) of the intermediate
    projects: np.ndarray  # per org: number of projects
    projects_recent: np.ndarray  # per org: decayed number of projects
    kind_lift: np.ndarray  # (kinds+1) x (kinds+1): log lift of member kind given coordinator kind
    country_lift: np.ndarray  # countries x countries, same for countries

    def projects_of(self, row: int) -> np.ndarray:
        """Project rows the organisation took part in."""
        if row >= self.n:
            return np.zeros(0, dtype=np.int32)
        return self.memberships.indices[self.memberships.indptr[row]:self.memberships.indptr[row + 1]]

    def neighbours(self, matrix: sp.csr_matrix, row: int) -> tuple[np.ndarray, np.ndarray]:
        if row >= self.n:
            return np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.float32)
        lo, hi = matrix.indptr[row], matrix.indptr[row + 1]
        return matrix.indices[lo:hi], matrix.data[lo:hi]


@dataclass
class _ProjectPart:
    """The matrices that only projects change (the costly products), kept across tie changes."""

    incidence: sp.csr_matrix
    memberships: sp.csr_matrix
    decay: np.ndarray
    count: sp.csr_matrix
    recent: sp.csr_matrix
    led: sp.csr_matrix
    projects: np.ndarray
    projects_recent: np.ndarray
    kind_lift: np.ndarray
    country_lift: np.ndarray


def _without_self(matrix: sp.spmatrix) -> sp.csr_matrix:
    matrix = sp.csr_matrix(matrix, dtype=np.float32)
    matrix.setdiag(0)
    matrix.eliminate_zeros()
    matrix.sort_indices()
    return matrix


def _grow(matrix: sp.csr_matrix, n: int, columns: int | None = None) -> sp.csr_matrix:
    """The matrix with n rows (and n columns unless given): organisations added since have empty
    rows; the data arrays are shared, not copied."""
    shape = (n, n if columns is None else columns)
    if matrix.shape == shape:
        return matrix
    extra = np.full(n - matrix.shape[0], matrix.indptr[-1], dtype=matrix.indptr.dtype)
    return sp.csr_matrix((matrix.data, matrix.indices, np.concatenate([matrix.indptr, extra])), shape=shape)


def _pad_to(values: np.ndarray, n: int) -> np.ndarray:
    out = np.zeros(n, dtype=values.dtype)
    out[: len(values)] = values
    return out


class _Growable:
    """A numpy array that doubles when full (appending rows one by one stays amortised O(1))."""

    def __init__(self, dtype: Any, fill: Any = 0) -> None:
        self.data = np.full(64, fill, dtype=dtype)
        self.fill = fill
        self.size = 0

    def append(self, value: Any) -> int:
        if self.size == len(self.data):
            grown = np.full(2 * len(self.data), self.fill, dtype=self.data.dtype)
            grown[: self.size] = self.data
            self.data = grown
        self.data[self.size] = value
        self.size += 1
        return self.size - 1

    @property
    def view(self) -> np.ndarray:
        return self.data[: self.size]


class OrganisationIndex:
    def __init__(
        self,
        text_model: TextModel | None = None,
        *,
        reference_year: int | None = None,
        half_life_years: float = 2.0,
        undated_age: float = 8.0,
        refit_fraction: float = 0.2,
        small_index: int = 5_000,
    ) -> None:
        self.text_model: TextModel = text_model or TfidfTextModel(ngram_range=(1, 2))
        self.reference_year = reference_year  # None: the year after the latest project
        self.half_life_years = half_life_years
        self.undated_age = undated_age  # how old an undated project counts as
        self.refit_fraction = refit_fraction
        self.small_index = small_index
        self._reset()

    def _reset(self) -> None:
        self._ids: list[str | None] = []
        self._rows: dict[str, int] = {}
        self._orgs: list[Organisation | None] = []
        self._active = _Growable(np.bool_, False)
        self._kind = _Growable(np.int16, UNKNOWN_KIND)
        self._country = _Growable(np.int32, 0)
        self._competencies = _Growable(np.uint64, 0)
        self._stages = _Growable(np.uint64, 0)
        self.country_names: list[str] = [""]  # code 0: unknown
        self._country_code: dict[str, int] = {"": 0}
        self._cluster_rows: dict[str, set[int]] = {}
        # projects: rows never reused; a replaced or removed project's row is marked dead
        self._projects: dict[str, Project] = {}
        self._project_row: dict[str, int] = {}
        self.project_ids: list[str] = []
        self._project_alive = _Growable(np.bool_, False)
        self._project_year = _Growable(np.float64, np.nan)
        self._member_project = _Growable(np.int32)
        self._member_org = _Growable(np.int32)
        self._member_coordinator = _Growable(np.bool_, False)
        self._org_projects: dict[int, set[str]] = {}
        self._ties: dict[tuple[int, int], dict[TieKind, float]] = {}
        # derived state, refreshed lazily
        self.org_vectors = VectorStore()
        self.project_vectors = VectorStore()
        self._dirty_orgs: set[int] = set()
        self._dirty_projects: set[int] = set()
        self._fitted_docs = 0
        self._changed_since_fit = 0
        self._project_part: _ProjectPart | None = None
        self._graph: Graph | None = None
        self._projects_dirty = True
        self._ties_dirty = True

    # ---- organisations -------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, org_id: str) -> bool:
        return org_id in self._rows

    @property
    def n_rows(self) -> int:
        return len(self._ids)

    def row_of(self, org_id: str) -> int | None:
        return self._rows.get(org_id)

    def id_of(self, row: int) -> str:
        org_id = self._ids[row]
        assert org_id is not None
        return org_id

    def organisation(self, org_id: str) -> Organisation | None:
        row = self._rows.get(org_id)
        return None if row is None else self._orgs[row]

    def organisation_at(self, row: int) -> Organisation:
        org = self._orgs[row]
        assert org is not None
        return org

    def organisations(self) -> list[Organisation]:
        return [o for o in self._orgs if o is not None]

    def upsert(self, org: Organisation) -> int:
        """Add an organisation, or replace what the index knows of it; it is recommendable at once."""
        row = self._rows.get(org.id)
        if row is None:
            row = len(self._ids)
            self._ids.append(org.id)
            self._orgs.append(org)
            self._rows[org.id] = row
            for buffer in (self._active, self._kind, self._country, self._competencies, self._stages):
                buffer.append(buffer.fill)
        else:
            for cluster in self.organisation_at(row).cluster_ids:
                self._cluster_rows.get(cluster, set()).discard(row)
            self._orgs[row] = org
        self._active.data[row] = True
        self._kind.data[row] = _KIND_CODE.get(org.kind or "", UNKNOWN_KIND)
        self._country.data[row] = self._country_code_of(org.country)
        self._competencies.data[row] = _bits(org.competencies, COMPETENCY_BITS)
        self._stages.data[row] = _bits(org.stages, STAGE_BITS)
        for cluster in org.cluster_ids:
            self._cluster_rows.setdefault(cluster, set()).add(row)
        self._mark_text(row)
        return row

    def remove(self, org_id: str) -> None:
        row = self._rows.pop(org_id, None)
        if row is None:
            return
        for cluster in self.organisation_at(row).cluster_ids:
            self._cluster_rows.get(cluster, set()).discard(row)
        self._ids[row] = None
        self._orgs[row] = None
        self._active.data[row] = False
        self._dirty_orgs.discard(row)

    def _country_code_of(self, country: str | None) -> int:
        key = (country or "").upper()
        code = self._country_code.get(key)
        if code is None:
            code = self._country_code[key] = len(self.country_names)
            self.country_names.append(key)
        return code

    def _mark_text(self, row: int) -> None:
        if row not in self._dirty_orgs:
            self._dirty_orgs.add(row)
            self._changed_since_fit += 1

    # ---- projects and ties ---------------------------------------------------------------

    def add_project(self, project: Project) -> None:
        """Record a past consortium; members unknown to the index get a bare organisation row."""
        if project.id in self._projects:
            self.remove_project(project.id)
        prow = self._project_alive.append(True)
        self._project_year.append(np.nan if project.year is None else project.year)
        self.project_ids.append(project.id)
        self._projects[project.id] = project
        self._project_row[project.id] = prow
        for org_id, role in project.members.items():
            row = self._rows.get(org_id)
            if row is None:
                row = self.upsert(Organisation(id=org_id))
            self._member_project.append(prow)
            self._member_org.append(row)
            self._member_coordinator.append(role == COORDINATOR)
            self._org_projects.setdefault(row, set()).add(project.id)
            self._mark_text(row)
        self._dirty_projects.add(prow)
        self._projects_dirty = True

    def remove_project(self, project_id: str) -> None:
        project = self._projects.pop(project_id, None)
        if project is None:
            return
        prow = self._project_row.pop(project_id)
        self._project_alive.data[prow] = False
        self._dirty_projects.discard(prow)
        for org_id in project.members:
            row = self._rows.get(org_id)
            if row is not None:
                self._org_projects.get(row, set()).discard(project_id)
                self._mark_text(row)
        self._projects_dirty = True

    def project(self, project_id: str) -> Project | None:
        return self._projects.get(project_id)

    def project_vector(self, project_id: str) -> Any | None:
        prow = self._project_row.get(project_id)
        return None if prow is None else self.project_vectors.row(prow)

    def projects(self) -> list[Project]:
        return list(self._projects.values())

    def projects_of(self, row: int) -> set[str]:
        return self._org_projects.get(row, set())

    def add_tie(self, a: str, b: str, kind: TieKind | str, weight: float = 1.0) -> None:
        """Strengthen the edge a-b of this kind (weights add up; a negative weight weakens it)."""
        ra = self._rows.get(a)
        if ra is None:
            ra = self.upsert(Organisation(id=a))
        rb = self._rows.get(b)
        if rb is None:
            rb = self.upsert(Organisation(id=b))
        if ra == rb:
            return
        kinds = self._ties.setdefault((min(ra, rb), max(ra, rb)), {})
        kinds[TieKind(kind)] = kinds.get(TieKind(kind), 0.0) + weight
        self._ties_dirty = True

    def remove_tie(self, a: str, b: str, kind: TieKind | str) -> None:
        ra, rb = self._rows.get(a), self._rows.get(b)
        if ra is None or rb is None:
            return
        kinds = self._ties.get((min(ra, rb), max(ra, rb)), {})
        if kinds.pop(TieKind(kind), None) is not None:
            self._ties_dirty = True

    def ties_between(self, row_a: int, row_b: int) -> dict[TieKind, float]:
        return self._ties.get((min(row_a, row_b), max(row_a, row_b)), {})

    def ties(self) -> list[tuple[str, str, TieKind, float]]:
        return [(self.id_of(a), self.id_of(b), kind, w)
                for (a, b), kinds in self._ties.items() if self._ids[a] and self._ids[b]
                for kind, w in kinds.items()]

    # ---- derived state ---------------------------------------------------------------------

    def active_mask(self) -> np.ndarray:
        return self._active.view

    @property
    def kind_codes(self) -> np.ndarray:
        return self._kind.view

    @property
    def country_codes(self) -> np.ndarray:
        return self._country.view

    @property
    def competency_bits(self) -> np.ndarray:
        return self._competencies.view

    @property
    def stage_bits(self) -> np.ndarray:
        return self._stages.view

    def country_code(self, country: str | None) -> int | None:
        return self._country_code.get((country or "").upper())

    def cluster_rows(self, clusters: Iterable[str]) -> np.ndarray:
        rows: set[int] = set()
        for cluster in clusters:
            rows |= self._cluster_rows.get(cluster, set())
        return np.fromiter(rows, dtype=np.int64, count=len(rows))

    def profile_text(self, row: int) -> str:
        org = self._orgs[row]
        if org is None:
            return ""
        projects = sorted((self._projects[p] for p in self._org_projects.get(row, ())),
                          key=lambda p: (-(p.year or 0), p.id))[:MAX_PROJECT_TEXTS]
        return " ".join([org.own_text(), *(p.text for p in projects)])

    def refresh(self) -> None:
        """Bring text vectors and collaboration matrices up to date (queries call this first)."""
        self._refresh_text()
        if self._projects_dirty or self._project_part is None:
            self._project_part = self._build_projects()
            self._projects_dirty = False
            self._graph = None
        if self._ties_dirty or self._graph is None:
            self._graph = self._combine(self._project_part)
            self._ties_dirty = False

    @property
    def graph(self) -> Graph:
        if self._graph is None or self._projects_dirty or self._ties_dirty:
            self.refresh()
        assert self._graph is not None
        return self._graph

    def rebuild(self) -> None:
        """Compact rows, refit the text model from scratch and rebuild every matrix."""
        orgs = [o for o in self._orgs if o is not None]
        projects = list(self._projects.values())
        ties = self.ties()
        self._reset()
        for org in orgs:
            self.upsert(org)
        for project in projects:
            self.add_project(project)
        for a, b, kind, weight in ties:
            self.add_tie(a, b, kind, weight)
        self._refit_text()
        self.refresh()

    def _refresh_text(self) -> None:
        docs = len(self._rows)
        if not self.text_model.fitted or (
            self._changed_since_fit
            and (docs <= self.small_index or self._changed_since_fit > self.refit_fraction * self._fitted_docs)
        ):
            self._refit_text()
            return
        if self._dirty_orgs:
            rows = sorted(self._dirty_orgs)
            self.org_vectors.set_rows(rows, self.text_model.transform([self.profile_text(r) for r in rows]))
            self._dirty_orgs.clear()
        if self._dirty_projects:
            prows = sorted(self._dirty_projects)
            texts = [self._projects[self.project_ids[p]].text for p in prows]
            self.project_vectors.set_rows(prows, self.text_model.transform(texts))
            self._dirty_projects.clear()

    def _refit_text(self) -> None:
        texts = [self.profile_text(r) for r in range(self.n_rows)]
        self.org_vectors.reset(self.text_model.fit_transform(texts))
        project_texts = [self._projects[p].text if p in self._projects else "" for p in self.project_ids]
        self.project_vectors.reset(self.text_model.transform(project_texts) if project_texts else None)
        self._fitted_docs = len(self._rows)
        self._changed_since_fit = 0
        self._dirty_orgs.clear()
        self._dirty_projects.clear()

    def decay(self, years: np.ndarray) -> np.ndarray:
        dated = years[~np.isnan(years)]
        reference = self.reference_year if self.reference_year is not None else (
            float(dated.max()) + 1 if len(dated) else 0.0)
        age = np.where(np.isnan(years), self.undated_age, np.maximum(reference - years, 0.0))
        return np.power(0.5, age / self.half_life_years)

    def _build_projects(self) -> _ProjectPart:
        n, n_projects = self.n_rows, self._project_alive.size
        alive = self._project_alive.view
        member_project, member_org = self._member_project.view, self._member_org.view
        live = alive[member_project]
        mp, mo, mc = member_project[live], member_org[live], self._member_coordinator.view[live]
        decay = self.decay(self._project_year.view)
        incidence = sp.csr_matrix((np.ones(len(mp), dtype=np.float32), (mp, mo)), shape=(n_projects, n))
        weighted = sp.csr_matrix((decay[mp].astype(np.float32), (mp, mo)), shape=(n_projects, n))
        coordinators = sp.csr_matrix((np.ones(int(mc.sum()), dtype=np.float32), (mp[mc], mo[mc])),
                                     shape=(n_projects, n))
        led_one_way = coordinators.T @ weighted
        return _ProjectPart(
            incidence=incidence,
            memberships=incidence.T.tocsr(),
            decay=decay,
            count=_without_self(incidence.T @ incidence),
            recent=_without_self(incidence.T @ weighted),
            led=_without_self(led_one_way + led_one_way.T),
            projects=np.asarray(incidence.sum(axis=0)).ravel(),
            projects_recent=np.asarray(weighted.sum(axis=0)).ravel(),
            kind_lift=self._lift(self.kind_codes[mo], mp, mo, mc, len(KINDS) + 1, self.kind_codes),
            country_lift=self._lift(self.country_codes[mo], mp, mo, mc, len(self.country_names),
                                    self.country_codes),
        )

    def _combine(self, part: _ProjectPart) -> Graph:
        """The project matrices plus the ties: what a tie change recomputes (sums, no products)."""
        n = self.n_rows
        ties, co_project_ties = self._tie_matrices(n)
        count, recent = _grow(part.count, n), _grow(part.recent, n)
        if co_project_ties.nnz:
            count, recent = count + co_project_ties, recent + co_project_ties
        step = recent + ties if ties.nnz else recent.copy()
        out_weight = np.asarray(step.sum(axis=1)).ravel()
        out_weight[out_weight == 0] = 1.0
        step.data *= np.repeat((1.0 / out_weight).astype(np.float32), np.diff(step.indptr))
        incidence = sp.csr_matrix((part.incidence.data, part.incidence.indices, part.incidence.indptr),
                                  shape=(part.incidence.shape[0], n))
        return Graph(
            n=n,
            incidence=incidence,
            memberships=_grow(part.memberships, n, incidence.shape[0]),
            project_decay=part.decay,
            count=count,
            recent=recent,
            led=_grow(part.led, n),
            ties=ties,
            walk=step,
            aa_weight=(1.0 / np.log(2.0 + np.diff(count.indptr))).astype(np.float32),
            projects=_pad_to(part.projects, n),
            projects_recent=_pad_to(part.projects_recent, n),
            kind_lift=part.kind_lift,
            country_lift=part.country_lift,
        )

    def _tie_matrices(self, n: int) -> tuple[sp.csr_matrix, sp.csr_matrix]:
        """(connection + interest + B2B weights, co_project tie counts), both symmetric."""
        rows: list[int] = []
        cols: list[int] = []
        weights: list[float] = []
        co_rows: list[int] = []
        co_cols: list[int] = []
        co_weights: list[float] = []
        for (a, b), kinds in self._ties.items():
            for kind, weight in kinds.items():
                if weight <= 0:
                    continue
                if kind is TieKind.co_project:
                    co_rows += [a, b]
                    co_cols += [b, a]
                    co_weights += [weight, weight]
                else:
                    rows += [a, b]
                    cols += [b, a]
                    weights += [weight, weight]
        # built from (row, col) pairs, so duplicates are summed and indices sorted: canonical CSR
        ties = sp.csr_matrix((np.asarray(weights, dtype=np.float32), (rows, cols)), shape=(n, n))
        co = sp.csr_matrix((np.asarray(co_weights, dtype=np.float32), (co_rows, co_cols)), shape=(n, n))
        return ties, co

    @staticmethod
    def _lift(member_codes: np.ndarray, mp: np.ndarray, mo: np.ndarray, mc: np.ndarray,
              size: int, codes: np.ndarray) -> np.ndarray:
        """log P(member code | coordinator code) / P(member code), add-one smoothed, from past consortia."""
        coordinator_of = np.full(int(mp.max()) + 1 if len(mp) else 0, -1, dtype=np.int64)
        coordinator_of[mp[mc]] = mo[mc]
        lead = coordinator_of[mp] if len(mp) else mp
        keep = (lead >= 0) & ~mc
        counts = np.ones((size, size))
        np.add.at(counts, (codes[lead[keep]], member_codes[keep]), 1.0)
        conditional = counts / counts.sum(axis=1, keepdims=True)
        marginal = counts.sum(axis=0) / counts.sum()
        return np.log(conditional / marginal[None, :]).astype(np.float32)
