-- Contact keys in long form. A WeChat ID that is a mobile number is mobile evidence too.
CREATE OR REPLACE TEMP TABLE contact_keys AS
SELECT record_id, 'mobile' AS kind, mobile AS value FROM recs WHERE mobile <> ''
UNION SELECT record_id, 'mobile', wechat FROM recs WHERE regexp_full_match(wechat, '1[3-9][0-9]{9}')
UNION ALL SELECT record_id, 'email', email FROM recs WHERE email <> ''
UNION ALL SELECT record_id, 'wechat', wechat FROM recs WHERE wechat <> '' AND NOT regexp_full_match(wechat, '1[3-9][0-9]{9}')
UNION ALL SELECT record_id, 'qq', qq FROM recs WHERE qq <> ''
UNION ALL SELECT record_id, 'douyin', douyin FROM recs WHERE douyin <> ''
UNION ALL SELECT record_id, 'kuaishou', kuaishou FROM recs WHERE kuaishou <> ''
UNION ALL SELECT record_id, 'landline', landline FROM recs WHERE landline <> '';

-- How many different people a key value seems to belong to: a switchboard or a shared
-- sales@ mailbox carries many names and identifies nobody.
CREATE OR REPLACE TEMP TABLE key_stats AS
SELECT k.kind, k.value, count(*) AS n_records,
       count(DISTINCT CASE WHEN NOT r.name_partial AND r.name_key <> '' THEN r.name_key END) AS n_names
FROM contact_keys k JOIN recs r USING (record_id)
GROUP BY k.kind, k.value;

CREATE OR REPLACE TEMP TABLE identifying_keys AS
SELECT k.* FROM contact_keys k JOIN key_stats s USING (kind, value)
WHERE s.n_records BETWEEN 2 AND $max_block AND s.n_names <= $max_names_per_key;

CREATE OR REPLACE TEMP TABLE candidate_pairs AS
SELECT a.record_id AS id_l, b.record_id AS id_r,
       count(DISTINCT a.kind) FILTER (WHERE a.kind <> 'landline') AS shared_contacts,
       bool_or(a.kind = 'landline') AS shared_landline
FROM identifying_keys a JOIN identifying_keys b
  ON a.kind = b.kind AND a.value = b.value AND a.record_id < b.record_id
GROUP BY ALL
UNION ALL
SELECT a.record_id, b.record_id, 0, false
FROM recs a JOIN recs b
  ON a.name_key = b.name_key AND a.company_key = b.company_key AND a.record_id < b.record_id
WHERE a.name_key <> '' AND a.company_key <> '' AND NOT a.name_partial AND NOT b.name_partial;

CREATE OR REPLACE TEMP TABLE scored_pairs AS
WITH p AS (
  SELECT id_l, id_r, max(shared_contacts) AS shared_contacts, bool_or(shared_landline) AS shared_landline
  FROM candidate_pairs GROUP BY id_l, id_r
)
SELECT p.*,
  CASE
    WHEN a.name_key = '' OR b.name_key = '' THEN 'unknown'
    WHEN a.name_key = b.name_key AND NOT a.name_partial AND NOT b.name_partial THEN 'same'
    WHEN (a.name_partial OR b.name_partial) AND left(a.name_key, 1) = left(b.name_key, 1) THEN 'compatible'
    WHEN a.name_pinyin = b.name_pinyin AND a.name_pinyin <> '' THEN 'similar'
    WHEN length(a.name_key) = length(b.name_key) AND left(a.name_key, 1) = left(b.name_key, 1)
         AND length(a.name_key) BETWEEN 2 AND 4 AND levenshtein(a.name_key, b.name_key) <= 1 THEN 'similar'
    WHEN length(a.name_key) > 4 AND jaro_winkler_similarity(a.name_key, b.name_key) >= 0.93 THEN 'similar'
    ELSE 'different'
  END AS name_relation,
  (a.company_key <> '' AND b.company_key <> '' AND a.company_key = b.company_key) AS same_company,
  ((a.mobile <> '' AND b.mobile <> '' AND a.mobile <> b.mobile)::INT
   + (a.email <> '' AND b.email <> '' AND a.email <> b.email)::INT
   + (a.wechat <> '' AND b.wechat <> '' AND a.wechat <> b.wechat)::INT) AS conflicting_contacts
FROM p JOIN recs a ON a.record_id = p.id_l JOIN recs b ON b.record_id = p.id_r;
