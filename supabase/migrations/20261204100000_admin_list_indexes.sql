/*
 * Indexes for the admin lists (20261204100200_admin_lists.sql): every filter an admin list offers
 * is either the leading column of an index that also yields the list's order, or a residual
 * filter over such an index whose rows it keeps often enough (checked by
 * tests/db/test_admin_list_plans.py, which EXPLAINs the common combinations and fails on a Seq
 * Scan of a partition or a Sort of the whole match set).
 *
 * Transactions (newest first: txn_date desc, id desc; the keyset cursor is the last row's pair):
 * - (txn_date desc, id desc): no filter, a date range, an amount range. EXPLAIN of page 1 is a
 *   Merge Append of one Index Scan per month partition stopping after 100 rows; a deep page's
 *   `txn_date <= cursor` prunes the newer partitions at plan time.
 * - (status, txn_date desc, id desc) replaces (status): the same lookups by status (its prefix)
 *   plus an ordered walk of one status, so a rare status (failed) is a short range, not a sort.
 * - (merchant_key, txn_date desc, id desc), (mapping_id, ...), (import_job_id, ...): one merchant's,
 *   one mapping's or one import's purchases in order. Without them, EXPLAIN shows the date walk
 *   filtering every row of the table for a merchant with few purchases.
 * - user: the existing (user_id, txn_date desc, id desc).
 * Amounts have no index: no index can both range over amount and give date order, card amounts are
 * dense (any range an admin types keeps a large share of rows, so the date walk fills a page after
 * reading a few times the page size), and `numeric` comparisons are not leakproof, so under RLS an
 * amount index could not be used anyway.
 *
 * Mappings (newest first: created_at desc, id desc; or by confidence):
 * - (category, created_at desc, id desc) replaces (category); (source, created_at desc, id desc)
 *   and (status, created_at desc, id desc) are new: each filter value in order, however rare.
 *   (status, admin_approved) stays: bulk review selects by both.
 * - (coalesce(confidence, -1) desc, id desc): sort by confidence (either direction; an index scans
 *   backwards), unknown confidence last; the keyset compares the same expression.
 * - (merchant_key text_pattern_ops) replaces (merchant_key): the database collation is not "C", so a
 *   plain btree cannot serve `LIKE 'prefix%'`; the pattern opclass serves the prefix and still serves
 *   the resolver's equality lookups.
 * - trigram search: the existing GIN index on lower(merchant_name).
 *
 * Users: (lower(email) collate "C", id) for the email prefix search, ordered by email: under the C
 *   collation one btree serves both the prefix (LIKE) and the order.
 *
 * These are built by CREATE INDEX on the partitioned parents (CONCURRENTLY is not supported there):
 * on a large hosted project, build each partition's index concurrently first and attach it.
 */

create index transactions_date_id_idx on public.transactions (txn_date desc, id desc);
create index transactions_status_date_idx on public.transactions (status, txn_date desc, id desc);
drop index public.transactions_status_idx;
create index transactions_merchant_date_idx on public.transactions (merchant_key, txn_date desc, id desc);
create index transactions_mapping_date_idx on public.transactions (mapping_id, txn_date desc, id desc)
  where mapping_id is not null;
create index transactions_import_date_idx on public.transactions (import_job_id, txn_date desc, id desc)
  where import_job_id is not null;

create index llm_mappings_status_created_idx on public.llm_mappings (status, created_at desc, id desc);
create index llm_mappings_category_created_idx on public.llm_mappings (category, created_at desc, id desc);
drop index public.llm_mappings_category_idx;
create index llm_mappings_source_created_idx on public.llm_mappings (source, created_at desc, id desc);
create index llm_mappings_confidence_idx on public.llm_mappings ((coalesce(confidence, -1)) desc, id desc);
create index llm_mappings_merchant_key_pattern_idx on public.llm_mappings (merchant_key text_pattern_ops);
drop index public.llm_mappings_merchant_key_idx;

create index profiles_email_prefix_idx on public.profiles ((lower(email) collate "C"), id);
