"""The recommender engine: reasons in words, incremental updates, filters, pluggable text model."""
from __future__ import annotations

import random

import numpy as np
import pytest
from sklearn.feature_extraction.text import HashingVectorizer

from services.matchmaking.recommender import (
    Organisation,
    OrganisationIndex,
    Project,
    Query,
    Recommender,
    TieKind,
)
from services.matchmaking.recommender.index import VectorStore
from services.matchmaking.recommender.scoring import TEXT_SLOPE_FEATURES
from services.matchmaking.recommender.text import TfidfTextModel, fold_fast
from shared.errors import InvalidInput
from shared.text import fold


def org(id: str, **fields: object) -> Organisation:
    for name in ("competencies", "stages", "cluster_ids"):
        if name in fields:
            fields[name] = frozenset(fields[name])  # type: ignore[arg-type]
    return Organisation(id=id, **fields)  # type: ignore[arg-type]


def imaging_index(**options: object) -> OrganisationIndex:
    """A lead hospital in Brussels, its past partners, and organisations it never met."""
    index = OrganisationIndex(**options)  # type: ignore[arg-type]
    index.upsert(org("erasme", name="Hôpital Erasme", kind="hospital", country="BE",
                     description="Imagerie médicale, PET-MRI de la démence", competencies={"mri", "pet"},
                     stages={"clinical_validation", "clinical_use"}, cluster_ids={"biowin"}))
    index.upsert(org("kul", name="KU Leuven", kind="university", country="BE",
                     description="MRI image analysis and deep learning segmentation",
                     competencies={"mri", "image_analysis_ai"}, stages={"basic_research"}))
    index.upsert(org("charite", name="Charité", kind="hospital", country="DE",
                     description="Klinische Studien, Demenz, Bildgebung", competencies={"clinical_trials"}))
    index.upsert(org("iba", name="IBA", kind="company", country="BE", description="proton therapy cyclotrons",
                     competencies={"proton_therapy"}, stages={"manufacturing", "development"},
                     cluster_ids={"biowin"}))
    index.upsert(org("inserm", name="Inserm", kind="research_institute", country="FR",
                     description="molecular imaging tracers for neurology", competencies={"molecular_imaging"}))
    index.upsert(org("tumc", name="TU Munich", kind="university", country="DE",
                     description="PET detector physics", competencies={"pet"}))
    for i in range(12):
        index.upsert(org(f"sme-{i}", name=f"SME {i}", kind="company", country="NL",
                         description=f"software product number {i} for retail logistics"))
    index.add_project(Project("p1", {"erasme": "coordinator", "kul": "participant", "charite": "participant"},
                              text="dementia MRI biomarkers", year=2018, name="DEMBIO"))
    index.add_project(Project("p2", {"erasme": "coordinator", "kul": "participant"},
                              text="MRI segmentation of white matter lesions", year=2020, name="WMSEG"))
    index.add_project(Project("p3", {"kul": "coordinator", "inserm": "participant", "charite": "participant"},
                              text="tracers for dementia imaging", year=2021, name="TRACE"))
    index.add_project(Project("p4", {"tumc": "coordinator", "sme-1": "participant"},
                              text="detector electronics", year=2015, name="DETECT"))
    index.add_tie("erasme", "iba", TieKind.connection)
    return index


def by_id(results):  # noqa: ANN001, ANN202
    return {r.org_id: r for r in results}


class TestReasons:
    def test_every_recommendation_says_why_in_words(self) -> None:
        results = Recommender(imaging_index()).recommend(
            Query(text="MRI imaging of dementia", lead_id="erasme", required_kinds=frozenset({"hospital"})))
        found = by_id(results)
        assert "erasme" not in found  # never the lead itself
        assert results[0].org_id in {"kul", "charite"}
        assert "worked with the lead on 2 projects" in found["kul"].reasons
        assert "shares competencies MRI" in found["kul"].reasons
        assert "hospital, which the call requires" in found["charite"].reasons
        assert "adds country diversity (DE)" in found["charite"].reasons
        assert "connected with the lead in the registry" in found["iba"].reasons
        assert "in the same cluster as the lead" in found["iba"].reasons
        assert any(r.startswith("2 common partners with the lead") for r in found["inserm"].reasons)
        for result in results[:6]:
            assert result.reasons, result
            assert all(isinstance(r, str) and 0 < len(r) < 90 and r == r.strip() for r in result.reasons)

    def test_text_reasons_name_the_shared_words_and_similar_projects(self) -> None:
        found = by_id(Recommender(imaging_index()).recommend(Query(text="dementia tracers", limit=5)))
        reasons = " / ".join(found["inserm"].reasons)
        assert "matches the query on" in reasons and "tracers" in reasons
        assert "took part in similar projects: TRACE" in reasons

    def test_accents_do_not_matter(self) -> None:
        recommender = Recommender(imaging_index())
        plain = recommender.rank(Query(text="imagerie medicale demence", limit=3))
        accented = recommender.rank(Query(text="IMAGERIE MÉDICALE DÉMENCE", limit=3))
        assert plain == accented and plain[0] == "erasme"

    def test_complementary_stages_and_wanted_competencies(self) -> None:
        found = by_id(Recommender(imaging_index()).recommend(
            Query(lead_id="erasme", competencies=frozenset({"proton_therapy"}), limit=20)))
        assert "shares competencies Proton therapy" in found["iba"].reasons
        assert "covers value-chain stages the lead lacks: development, manufacturing" in found["iba"].reasons


class TestIncrementalUpdates:
    @pytest.mark.parametrize("small_index", [5_000, 0], ids=["refit", "patch"])
    def test_added_organisation_is_recommendable_at_once(self, small_index: int) -> None:
        index = imaging_index(small_index=small_index, refit_fraction=0.5)
        recommender = Recommender(index)
        recommender.recommend(Query(text="proton therapy", limit=3))  # fitted and queried before
        index.upsert(org("newco", kind="company", country="BE", description="proton therapy dosimetry"))
        results = recommender.recommend(Query(text="proton therapy dosimetry", limit=3))
        assert results[0].org_id == "newco"
        assert any(r.startswith("matches the query on") for r in results[0].reasons)

    def test_updated_text_counts_and_removed_organisations_vanish(self) -> None:
        index = imaging_index(small_index=0, refit_fraction=0.9)
        recommender = Recommender(index)
        assert recommender.rank(Query(text="cyclotrons", limit=1)) == ["iba"]
        index.upsert(org("sme-3", kind="company", country="NL", description="cyclotrons cyclotrons cyclotrons"))
        assert recommender.rank(Query(text="cyclotrons", limit=1)) == ["sme-3"]
        index.remove("sme-3")
        assert "sme-3" not in recommender.rank(Query(text="cyclotrons", limit=50))
        assert "sme-3" not in index

    def test_new_project_links_its_members_on_the_next_query(self) -> None:
        index = imaging_index()
        recommender = Recommender(index)
        before = by_id(recommender.recommend(Query(lead_id="tumc", limit=20)))
        assert "worked with the lead" not in " ".join(before["inserm"].reasons)
        index.add_project(Project("p5", {"tumc": "coordinator", "inserm": "participant"}, year=2022))
        after = by_id(recommender.recommend(Query(lead_id="tumc", limit=20)))
        assert "worked with the lead on 1 project" in after["inserm"].reasons
        index.remove_project("p5")
        again = by_id(recommender.recommend(Query(lead_id="tumc", limit=20)))
        assert "worked with the lead" not in " ".join(again["inserm"].reasons)

    def test_ties_count_on_the_next_query_and_can_be_taken_back(self) -> None:
        index = imaging_index()
        recommender = Recommender(index)
        recommender.recommend(Query(lead_id="tumc"))
        index.upsert(org("late", kind="hospital", country="IT"))  # after the matrices were built
        index.add_tie("tumc", "late", TieKind.b2b_follow_up)
        found = by_id(recommender.recommend(Query(lead_id="tumc", limit=20)))
        assert "followed up a B2B meeting with the lead" in found["late"].reasons
        index.add_tie("tumc", "late", TieKind.b2b_follow_up, -1.0)  # the follow-up was withdrawn
        found = by_id(recommender.recommend(Query(lead_id="tumc", limit=20)))
        assert not any("B2B" in r for r in found["late"].reasons)
        index.add_tie("tumc", "late", TieKind.accepted_interest)
        index.remove_tie("tumc", "late", TieKind.accepted_interest)
        found = by_id(recommender.recommend(Query(lead_id="tumc", limit=20)))
        assert not any("interest" in r for r in found["late"].reasons)

    def test_rebuild_keeps_the_ranking(self) -> None:
        index = imaging_index(small_index=0)
        recommender = Recommender(index)
        index.upsert(org("late", kind="university", country="IT", description="MRI physics"))
        index.remove("sme-0")
        query = Query(text="MRI dementia", lead_id="erasme", limit=10)
        before = recommender.rank(query)
        index.rebuild()
        assert recommender.rank(query) == before
        assert index.n_rows == len(index)  # removed rows compacted away

    def test_project_members_unknown_to_the_index_get_a_row(self) -> None:
        index = OrganisationIndex()
        index.add_project(Project("p", {"a": "coordinator", "b": "participant"}, text="x-ray"))
        assert Recommender(index).rank(Query(lead_id="a")) == ["b"]


class TestQueries:
    def test_filters_and_exclusions(self) -> None:
        recommender = Recommender(imaging_index())
        ranked = recommender.rank(Query(lead_id="erasme", countries=frozenset({"de"}), limit=10))
        assert set(ranked) == {"charite", "tumc"}
        ranked = recommender.rank(Query(lead_id="erasme", exclude_ids=frozenset({"kul"}), limit=30))
        assert "kul" not in ranked and len(ranked) == 16

    def test_unknown_lead_and_bad_limit_name_the_field(self) -> None:
        recommender = Recommender(imaging_index())
        with pytest.raises(InvalidInput) as error:
            recommender.recommend(Query(lead_id="nobody"))
        assert error.value.extensions["errors"][0]["field"] == "lead_id"
        with pytest.raises(InvalidInput) as error:
            recommender.recommend(Query(text="x", limit=0))
        assert error.value.extensions["errors"][0]["field"] == "limit"
        with pytest.raises(InvalidInput) as error:
            recommender.recommend(Query(text="x", required_kinds=frozenset({"castle"})))
        assert error.value.extensions["errors"][0]["field"] == "required_kinds"
        with pytest.raises(InvalidInput) as error:
            recommender.recommend(Query(text="x", competencies=frozenset({"alchemy"})))
        assert error.value.extensions["errors"][0]["field"] == "competencies"

    def test_unknown_weight_is_refused(self) -> None:
        with pytest.raises(InvalidInput):
            Recommender(imaging_index(), {"shoe_size": 1.0})

    def test_empty_query_ranks_by_activity(self) -> None:
        ranked = Recommender(imaging_index()).rank(Query(limit=3))
        assert ranked[0] in {"kul", "charite"}


class TestTextModel:
    def test_word_pairs_used_by_two_profiles_are_terms_every_single_word_stays(self) -> None:
        model = TfidfTextModel(ngram_range=(1, 2))
        model.fit_transform(["Gene therapy for retinal disease", "gene THERAPY vectors", "proton beam cyclotron"])
        terms = set(model.terms())  # type: ignore[arg-type]
        assert "gene therapy" in terms  # two profiles use it
        assert "proton beam" not in terms and "retinal disease" not in terms  # one profile only
        assert {"proton", "beam", "cyclotron", "retinal"} <= terms  # a single word always counts
        vector = model.transform(["thérapie génique: gene therapy"]).toarray()[0]
        assert np.isclose(np.linalg.norm(vector), 1.0)

    def test_single_words_by_default(self) -> None:
        model = TfidfTextModel()
        model.fit_transform(["gene therapy", "gene therapy"])
        assert set(model.terms()) == {"gene", "therapy", "placeholder"}  # type: ignore[arg-type]

    def test_the_index_matches_word_pairs(self) -> None:
        index = imaging_index()
        # the same four words; only the second says "gene therapy" (a pair the clinic uses too)
        index.upsert(org("geno", kind="company", description="gene panels and cell therapy"))
        index.upsert(org("vecto", kind="company", description="gene therapy and cell panels"))
        index.upsert(org("clinic", kind="hospital", description="gene therapy trials"))
        ranked = Recommender(index).rank(Query(text="gene therapy", limit=4))
        assert ranked.index("vecto") < ranked.index("geno")  # single words alone: a tie, row order


class TestKindTextSlopes:
    def test_each_kind_has_its_own_slope_on_similar_past_projects(self) -> None:
        recommender = Recommender(imaging_index())
        features = recommender.features(Query(text="dementia imaging tracers", lead_id="erasme"))
        kinds = recommender.index.kind_codes
        for name in TEXT_SLOPE_FEATURES:
            kind = name.split(":")[1]
            rows = [recommender.index.row_of(o) for o in ("kul", "charite", "inserm", "iba")]
            for row in rows:
                own = recommender.index.organisation_at(row).kind == kind
                expected = features["text_projects"][row] if own else 0.0
                assert features[name][row] == pytest.approx(expected), (name, row)
        assert features["text_projects:research_institute"][recommender.index.row_of("inserm")] > 0
        assert len(kinds) == recommender.index.n_rows

    def test_a_slope_is_worded_as_the_text_match(self) -> None:
        weights = {"text_projects:research_institute": 5.0}
        found = by_id(Recommender(imaging_index(), weights).recommend(Query(text="dementia tracers", limit=3)))
        assert found["inserm"].reasons[:2] == ("matches the query on tracers, dementia",
                                               "took part in similar projects: TRACE")


class DenseHashingModel:
    """A stand-in for a sentence-embedding model: dense vectors, no words behind dimensions."""

    def __init__(self) -> None:
        self._vectorizer = HashingVectorizer(n_features=256, preprocessor=fold_fast, alternate_sign=False)
        self.fitted = False

    def fit_transform(self, texts):  # noqa: ANN001, ANN201
        self.fitted = True
        return self.transform(texts)

    def transform(self, texts):  # noqa: ANN001, ANN201
        return np.asarray(self._vectorizer.transform(texts).toarray(), dtype=np.float32)

    def terms(self) -> None:
        return None


def test_a_dense_text_model_plugs_in() -> None:
    index = imaging_index(text_model=DenseHashingModel(), small_index=0)
    recommender = Recommender(index)
    assert recommender.rank(Query(text="proton therapy cyclotrons", limit=1)) == ["iba"]
    index.upsert(org("newco", kind="company", description="dosimetry phantoms dosimetry"))
    result = recommender.recommend(Query(text="dosimetry phantoms", limit=1))[0]
    assert result.org_id == "newco" and "text close" not in " ".join(result.reasons)


def test_vector_store_patches_then_consolidates_without_changing_scores() -> None:
    rng = np.random.default_rng(3)
    rows = rng.random((3000, 16)).astype(np.float32)
    store = VectorStore()
    store.reset(rows[:1000].copy())
    for start in range(1000, 3000, 500):  # appended rows, then overwrites of old ones
        store.set_rows(list(range(start, start + 500)), rows[start:start + 500])
    store.set_rows([5, 7], rows[[5, 7]] * 2)
    rows[[5, 7]] *= 2
    query = rng.random(16).astype(np.float32)
    assert np.allclose(store.scores(query, 3000), rows @ query, atol=1e-4)
    assert store.base_rows > 1000  # the patch was folded into the base on the way


def test_fast_folding_equals_shared_folding() -> None:
    rnd = random.Random(5)
    alphabet = "abcXYZ -éèÉÎßæŒøłđıİñÇΣΑ日ẞﬁ½" + "\u0308"
    for _ in range(3000):
        text = "".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 25)))
        assert fold_fast(text) == fold(text)
