import pandas as pd

from datafactory_pipelines.linkage import link_records
from datafactory_pipelines.standardize import standardize_frame


def _link(rows: list[dict]) -> list[int]:
    raw = pd.DataFrame(rows).fillna("")
    std = standardize_frame(raw)
    std["record_id"] = range(1, len(std) + 1)
    clusters = link_records(std).clusters.sort_values("record_id")
    return clusters["cluster_id"].tolist()


def test_same_mobile_different_formats_link() -> None:
    ids = _link([{"name": "张伟", "mobile": "+86 138 0013 8000"}, {"name": "張偉", "mobile": "13800138000.0"}])
    assert ids[0] == ids[1]


def test_namesakes_at_different_companies_stay_apart() -> None:
    ids = _link([
        {"name": "张伟", "mobile": "13800138000", "company": "深圳星海科技有限公司"},
        {"name": "张伟", "mobile": "13900139000", "company": "杭州云帆贸易有限公司"},
    ])
    assert ids[0] != ids[1]


def test_colleagues_sharing_a_switchboard_stay_apart() -> None:
    rows = [{"name": n, "mobile": "0755-81234567", "company": "深圳星海科技有限公司"}
            for n in ("王芳", "李娜", "刘洋", "陈静")]
    rows.append({"name": "王芳", "mobile": "0755-81234567", "company": "深圳星海科技有限公司",
                 "email": "wf@qq.com"})
    ids = _link(rows)
    assert len({ids[1], ids[2], ids[3], ids[0]}) == 4
    assert ids[4] == ids[0]  # same name, same company: the same 王芳


def test_changed_mobile_same_email_and_wechat_stays_together() -> None:
    ids = _link([
        {"name": "赵敏", "mobile": "13500135000", "email": "zm@163.com", "wechat": "zhaomin88"},
        {"name": "赵敏", "mobile": "18600186000", "email": "ZM@163.COM", "wechat": "ZhaoMin88"},
    ])
    assert ids[0] == ids[1]


def test_traditional_name_joins_simplified_twin() -> None:
    ids = _link([{"name": "陳麗華", "email": "clh@qq.com"}, {"name": "陈丽华", "email": "clh@qq.com"}])
    assert ids[0] == ids[1]


def test_one_shared_mobile_with_a_different_name_does_not_link() -> None:
    ids = _link([{"name": "周杰", "mobile": "13700137000"}, {"name": "吴磊", "mobile": "13700137000"}])
    assert ids[0] != ids[1]


def test_partial_name_links_by_surname_and_contact() -> None:
    ids = _link([{"name": "张总", "mobile": "13800138000"}, {"name": "张伟", "mobile": "13800138000"}])
    assert ids[0] == ids[1]


def test_components_match_scipy_on_random_graphs() -> None:
    """The numpy connected components give scipy's partition, each labelled by its smallest member."""
    import numpy as np
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    from datafactory_pipelines.linkage.clustering import components

    rng = np.random.default_rng(7)
    for n, m in [(1, 0), (2, 1), (50, 0), (50, 30), (2000, 1500), (2000, 4000), (30000, 25000)]:
        left, right = rng.integers(0, n, m), rng.integers(0, n, m)
        ours = components(n, left, right)
        theirs = connected_components(coo_matrix((np.ones(m, dtype=np.int8), (left, right)), shape=(n, n)),
                                      directed=False)[1]
        smallest = pd.Series(np.arange(n)).groupby(theirs).transform("min").to_numpy()
        assert (ours == smallest).all(), (n, m)
    chain = np.arange(999)[::-1]  # a long path, hooked from its far end first
    assert (components(1000, chain, chain + 1) == 0).all()


def test_term_frequency_counts_round_to_the_nearest_power_of_two_in_log() -> None:
    import numpy as np

    from datafactory_pipelines.linkage.sql import tf_bucket

    counts = np.arange(1, 100_001, dtype=float)
    buckets = tf_bucket(counts)
    exponents = np.log2(buckets)
    assert np.array_equal(exponents, np.round(exponents))  # powers of two
    # unbiased: an agreeing value's weight is off by at most half a bit, up or down
    assert np.abs(exponents - np.log2(counts)).max() <= 0.5
    assert (buckets < counts).any() and (buckets > counts).any()
    # one more record moves a value's weight only where its count crosses 2^(k+1/2)
    crossings = counts[:-1][buckets[:-1] != buckets[1:]].astype(int).tolist()
    assert crossings[:8] == [1, 2, 5, 11, 22, 45, 90, 181]
    assert crossings == [int(2 ** (k + 0.5)) for k in range(17)]  # 2^16.5 = 92681.9 is the last below 100k
    # no count is kept as 0 and an unknown count stays unknown
    assert tf_bucket(np.array([0.0]))[0] == 0 and np.isnan(tf_bucket(np.array([np.nan]))[0])


def test_contradicting_pairs_reuse_scored_weights_and_equal_comparing_every_pair() -> None:
    """Clustering checks the pairs inside a component: reusing the weights of those that were candidates
    (scored already) finds exactly the contradicting pairs that comparing every pair afresh finds."""
    import numpy as np

    from datafactory_pipelines import duckdb_settings
    from datafactory_pipelines.linkage.clustering import _contradicting_pairs
    from datafactory_pipelines.linkage.config import load_config
    from datafactory_pipelines.linkage.engine import _population, default_model, link_frame, score_pairs
    from datafactory_pipelines.linkage.model import match_weights
    from datafactory_pipelines.linkage.sql import block_pairs, compare, gamma_matrix, prepare, tf_inputs

    rng = np.random.default_rng(11)
    names = [s + g for s in "张王李刘陈" for g in ("伟", "敏", "静", "总")]
    companies = ["深圳星海科技有限公司", "杭州云帆贸易有限公司", "成都瑞丰华创软件有限公司"]
    rows = [{"name": str(rng.choice(names)), "mobile": f"1380013{int(rng.integers(0, 40)):04d}",
             "email": f"u{int(rng.integers(0, 40))}@163.com", "company": str(rng.choice(companies))}
            for _ in range(400)]
    std = standardize_frame(pd.DataFrame(rows))
    std["record_id"] = range(1, len(std) + 1)
    config, model = load_config(), default_model()
    con = duckdb_settings.connect()
    try:
        n = prepare(con, link_frame(std), config)
        block_pairs(con, config)
        population = _population(model, n)
        pairs = score_pairs(con, config, model, population)
        con.execute("CREATE TEMP TABLE every_pair AS SELECT a._id AS _l, b._id AS _r FROM recs a JOIN recs b "
                    "ON a._id < b._id WHERE b._id < 120")
        reused = con.execute("SELECT count(*) FROM every_pair JOIN pairs USING (_l, _r)").fetchall()[0][0]
        ours = _contradicting_pairs(con, config, model, pairs, population, "every_pair")
        everything = compare(con, config, "every_pair")
    finally:
        con.close()
    weights, contributions = match_weights(model, gamma_matrix(everything, config),
                                           tf_inputs(everything, config, population))
    # contradicting: below the split weight, and some comparison where both hold a value disagrees
    expected = everything.loc[(weights < config.split_below) & (contributions < 0).any(axis=1)]
    assert reused > 0 and len(expected) > 0  # both ways of finding a weight are exercised
    assert set(zip(ours["_l"], ours["_r"], strict=True)) == set(zip(expected["_l"], expected["_r"], strict=True))
    assert len(ours) == len(expected)
