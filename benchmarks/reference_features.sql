-- Hand-written DuckDB reference: one query over the six Parquet files of a world,
-- 64 point-in-time features per customer (counts, sums, recency, windows per table).
-- {dir} is the world's directory and {as_of} the cut-off (events strictly before it).
-- Run by benchmarks/bench_outofcore.py side by side with `churnguard features`.
WITH
pop AS (
    SELECT customer_id, signup_date, value FROM read_parquet('{dir}/customers.parquet')
    WHERE (signup_date IS NULL OR signup_date < TIMESTAMP '{as_of}')
      AND (churn_date IS NULL OR churn_date >= TIMESTAMP '{as_of}')
),
p AS (
    SELECT customer_id,
        count(*) FILTER (NOT coalesce(is_return, false)) AS p_count_total,
        sum(amount) FILTER (NOT coalesce(is_return, false)) AS p_amount_total,
        avg(amount) FILTER (NOT coalesce(is_return, false)) AS p_avg_amount,
        date_diff('second', max(timestamp), TIMESTAMP '{as_of}') / 86400.0 AS p_days_since_last,
        date_diff('second', min(timestamp), TIMESTAMP '{as_of}') / 86400.0 AS p_days_since_first,
        count(*) FILTER (timestamp >= TIMESTAMP '{as_of}' - INTERVAL 30 DAY) AS p_count_30d,
        count(*) FILTER (timestamp >= TIMESTAMP '{as_of}' - INTERVAL 90 DAY) AS p_count_90d,
        count(*) FILTER (timestamp >= TIMESTAMP '{as_of}' - INTERVAL 365 DAY) AS p_count_365d,
        sum(amount) FILTER (timestamp >= TIMESTAMP '{as_of}' - INTERVAL 30 DAY) AS p_amount_30d,
        sum(amount) FILTER (timestamp >= TIMESTAMP '{as_of}' - INTERVAL 90 DAY) AS p_amount_90d,
        sum(amount) FILTER (timestamp >= TIMESTAMP '{as_of}' - INTERVAL 365 DAY) AS p_amount_365d,
        count(*) FILTER (coalesce(is_return, false) AND timestamp >= TIMESTAMP '{as_of}' - INTERVAL 90 DAY) AS p_returns_90d,
        sum(abs(amount)) FILTER (coalesce(is_return, false) AND timestamp >= TIMESTAMP '{as_of}' - INTERVAL 90 DAY) AS p_returns_amount_90d,
        count(DISTINCT timestamp) AS p_distinct_times
    FROM read_parquet('{dir}/purchases.parquet') WHERE timestamp < TIMESTAMP '{as_of}' GROUP BY customer_id
),
i AS (
    SELECT customer_id,
        count(*) AS i_contacts_total,
        date_diff('second', max(timestamp), TIMESTAMP '{as_of}') / 86400.0 AS i_days_since_last,
        count(*) FILTER (timestamp >= TIMESTAMP '{as_of}' - INTERVAL 30 DAY) AS i_contacts_30d,
        count(*) FILTER (timestamp >= TIMESTAMP '{as_of}' - INTERVAL 90 DAY) AS i_contacts_90d,
        count(*) FILTER (timestamp >= TIMESTAMP '{as_of}' - INTERVAL 365 DAY) AS i_contacts_365d,
        count(*) FILTER (is_complaint AND timestamp >= TIMESTAMP '{as_of}' - INTERVAL 30 DAY) AS i_complaints_30d,
        count(*) FILTER (is_complaint AND timestamp >= TIMESTAMP '{as_of}' - INTERVAL 90 DAY) AS i_complaints_90d,
        count(*) FILTER (is_complaint AND timestamp >= TIMESTAMP '{as_of}' - INTERVAL 365 DAY) AS i_complaints_365d,
        count(*) FILTER (is_complaint AND NOT coalesce(resolved, false) AND timestamp >= TIMESTAMP '{as_of}' - INTERVAL 90 DAY) AS i_unresolved_90d,
        count(*) FILTER (escalated AND timestamp >= TIMESTAMP '{as_of}' - INTERVAL 90 DAY) AS i_escalated_90d,
        count(*) FILTER (abandoned AND timestamp >= TIMESTAMP '{as_of}' - INTERVAL 90 DAY) AS i_abandoned_90d,
        avg(wait_seconds) FILTER (timestamp >= TIMESTAMP '{as_of}' - INTERVAL 90 DAY) / 60 AS i_wait_mean_90d,
        max(wait_seconds) FILTER (timestamp >= TIMESTAMP '{as_of}' - INTERVAL 90 DAY) / 60 AS i_wait_max_90d,
        avg(handle_seconds) FILTER (timestamp >= TIMESTAMP '{as_of}' - INTERVAL 90 DAY) / 60 AS i_handle_mean_90d,
        avg(csat) FILTER (timestamp >= TIMESTAMP '{as_of}' - INTERVAL 365 DAY) AS i_csat_mean_365d,
        avg(nps) FILTER (timestamp >= TIMESTAMP '{as_of}' - INTERVAL 365 DAY) AS i_nps_mean_365d,
        avg(ces) FILTER (timestamp >= TIMESTAMP '{as_of}' - INTERVAL 365 DAY) AS i_ces_mean_365d,
        avg(sentiment) FILTER (timestamp >= TIMESTAMP '{as_of}' - INTERVAL 30 DAY) AS i_sentiment_30d,
        avg(sentiment) FILTER (timestamp >= TIMESTAMP '{as_of}' - INTERVAL 365 DAY) AS i_sentiment_365d,
        arg_max(csat, timestamp) FILTER (csat IS NOT NULL) AS i_csat_latest,
        arg_max(nps, timestamp) FILTER (nps IS NOT NULL) AS i_nps_latest,
        count(*) FILTER (channel = 'phone' AND timestamp >= TIMESTAMP '{as_of}' - INTERVAL 90 DAY) AS i_phone_90d,
        count(*) FILTER (channel = 'email' AND timestamp >= TIMESTAMP '{as_of}' - INTERVAL 90 DAY) AS i_email_90d,
        count(*) FILTER (channel = 'chat' AND timestamp >= TIMESTAMP '{as_of}' - INTERVAL 90 DAY) AS i_chat_90d
    FROM read_parquet('{dir}/interactions.parquet') WHERE timestamp < TIMESTAMP '{as_of}' GROUP BY customer_id
),
a AS (
    SELECT customer_id, count(*) AS a_assets,
        count(*) FILTER (warranty_end >= TIMESTAMP '{as_of}') AS a_in_warranty,
        date_diff('second', min(install_date), TIMESTAMP '{as_of}') / 86400.0 AS a_oldest_install_days,
        avg(service_interval_days) AS a_interval_mean
    FROM read_parquet('{dir}/assets.parquet')
    WHERE install_date IS NULL OR install_date < TIMESTAMP '{as_of}' GROUP BY customer_id
),
s AS (
    SELECT a.customer_id,
        count(*) AS s_events_total,
        count(*) FILTER (e.timestamp >= TIMESTAMP '{as_of}' - INTERVAL 365 DAY) AS s_events_365d,
        count(*) FILTER (e.kind IN ('repair', 'failure') AND e.timestamp >= TIMESTAMP '{as_of}' - INTERVAL 90 DAY) AS s_failures_90d,
        count(*) FILTER (e.kind IN ('repair', 'failure') AND e.timestamp >= TIMESTAMP '{as_of}' - INTERVAL 365 DAY) AS s_failures_365d,
        sum(e.cost) FILTER (e.timestamp >= TIMESTAMP '{as_of}' - INTERVAL 365 DAY) AS s_cost_365d,
        date_diff('second', max(e.timestamp) FILTER (e.kind = 'preventive'), TIMESTAMP '{as_of}') / 86400.0 AS s_days_since_preventive,
        date_diff('second', max(e.timestamp) FILTER (e.kind IN ('repair', 'failure')), TIMESTAMP '{as_of}') / 86400.0 AS s_days_since_failure
    FROM read_parquet('{dir}/service_events.parquet') e JOIN read_parquet('{dir}/assets.parquet') a USING (asset_id)
    WHERE e.timestamp < TIMESTAMP '{as_of}' GROUP BY a.customer_id
),
u AS (
    SELECT customer_id,
        date_diff('second', max(timestamp), TIMESTAMP '{as_of}') / 86400.0 AS u_days_since_last,
        count(*) FILTER (timestamp >= TIMESTAMP '{as_of}' - INTERVAL 30 DAY) AS u_events_30d,
        count(*) FILTER (timestamp >= TIMESTAMP '{as_of}' - INTERVAL 90 DAY) AS u_events_90d,
        count(*) FILTER (timestamp >= TIMESTAMP '{as_of}' - INTERVAL 365 DAY) AS u_events_365d,
        count(DISTINCT CAST(timestamp AS DATE)) FILTER (timestamp >= TIMESTAMP '{as_of}' - INTERVAL 30 DAY) AS u_active_days_30d,
        count(DISTINCT CAST(timestamp AS DATE)) FILTER (timestamp >= TIMESTAMP '{as_of}' - INTERVAL 90 DAY) AS u_active_days_90d,
        sum(value) FILTER (timestamp >= TIMESTAMP '{as_of}' - INTERVAL 30 DAY) AS u_value_30d,
        sum(value) FILTER (timestamp >= TIMESTAMP '{as_of}' - INTERVAL 90 DAY) AS u_value_90d,
        sum(value) FILTER (timestamp >= TIMESTAMP '{as_of}' - INTERVAL 60 DAY AND timestamp < TIMESTAMP '{as_of}' - INTERVAL 30 DAY) AS u_value_prev_30d,
        count(*) FILTER (event = 'login' AND timestamp >= TIMESTAMP '{as_of}' - INTERVAL 30 DAY) AS u_login_30d,
        count(*) FILTER (event = 'login' AND timestamp >= TIMESTAMP '{as_of}' - INTERVAL 90 DAY) AS u_login_90d,
        sum(value) FILTER (event = 'cycles' AND timestamp >= TIMESTAMP '{as_of}' - INTERVAL 90 DAY) AS u_cycles_90d,
        count(*) FILTER (asset_id IS NOT NULL AND timestamp >= TIMESTAMP '{as_of}' - INTERVAL 90 DAY) AS u_asset_events_90d
    FROM read_parquet('{dir}/usage.parquet') WHERE timestamp < TIMESTAMP '{as_of}' GROUP BY customer_id
)
SELECT pop.customer_id,
    date_diff('second', pop.signup_date, TIMESTAMP '{as_of}') / 86400.0 AS c_tenure_days, pop.value AS c_value,
    p.* EXCLUDE (customer_id), i.* EXCLUDE (customer_id), a.* EXCLUDE (customer_id),
    s.* EXCLUDE (customer_id), u.* EXCLUDE (customer_id)
FROM pop
LEFT JOIN p USING (customer_id) LEFT JOIN i USING (customer_id) LEFT JOIN a USING (customer_id)
LEFT JOIN s USING (customer_id) LEFT JOIN u USING (customer_id)
ORDER BY pop.customer_id
