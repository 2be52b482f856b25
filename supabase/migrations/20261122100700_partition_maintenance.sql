/*
 * Partition maintenance: monthly partitions created ahead of time, scheduled daily with pg_cron.
 *
 * private.maintain_partitions() makes sure these months exist (relative to the current date):
 * - llm_mappings (created_at = insertion time): 3 months back to 12 months ahead;
 * - transactions (txn_date = purchase date): 24 months back, because bank files carry history, and
 *   3 months ahead: purchases are never dated far ahead, the daily run leaves ~90 retries of
 *   slack, and every empty future partition is one more index scan in each user's first page.
 * Anything outside lands in the table's default partition, so no insert ever fails.
 *
 * Creating a month whose rows already sit in the default partition (e.g. a purchase dated five
 * months ahead) would violate the default partition's constraint; those rows are moved into the
 * new partition (delete from default, insert into a standalone table, attach). If a foreign key
 * pins them (a merchant's mapping in force, an allocation's transaction) the month is skipped
 * with a warning and the rows stay correct in the default partition.
 *
 * Partitions are created in schema `private` (a partition in `public` would be its own API
 * endpoint without the parent's policies). Attaching briefly locks the parent, so each month is
 * tried with a short lock_timeout and retried on the next daily run when busy (months of slack).
 * Partitions are never dropped here: retention would need the stats deltas adjusted too.
 */

create or replace function private.create_month_partition(parent regclass, month date)
returns text
language plpgsql
set search_path = ''
set lock_timeout = '3s'
as $$
declare
  parent_name text;
  partition_name text;
  key_column text;
  key_type text;
  lower_bound text;
  upper_bound text;
begin
  select c.relname, a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod)
  into parent_name, key_column, key_type
  from pg_catalog.pg_partitioned_table as pt
  join pg_catalog.pg_class as c on c.oid = pt.partrelid
  join pg_catalog.pg_attribute as a on a.attrelid = pt.partrelid and a.attnum = pt.partattrs[0]
  where pt.partrelid = parent;

  partition_name := format('%s_p%s', parent_name, to_char(month, 'YYYY_MM'));
  if to_regclass(format('private.%I', partition_name)) is not null then
    return 'exists';
  end if;

  -- Month boundaries in UTC, whatever the session time zone.
  if key_type = 'date' then
    lower_bound := quote_literal(date_trunc('month', month)::date);
    upper_bound := quote_literal((date_trunc('month', month) + interval '1 month')::date);
  else
    lower_bound := quote_literal(to_char(date_trunc('month', month), 'YYYY-MM-DD') || ' 00:00:00+00');
    upper_bound := quote_literal(to_char(date_trunc('month', month) + interval '1 month', 'YYYY-MM-DD') || ' 00:00:00+00');
  end if;

  begin
    execute format('create table private.%I partition of %s for values from (%s) to (%s)',
                   partition_name, parent, lower_bound, upper_bound);
    return 'created';
  exception
    when check_violation then
      null;  -- the default partition holds rows of this month: move them below
    when lock_not_available then
      raise warning 'partition % not created: % is busy; retried on the next run', partition_name, parent;
      return 'busy';
  end;

  begin
    execute format('create table private.%I (like %s including defaults including constraints)',
                   partition_name, parent);
    execute format(
      'with moved as (delete from private.%I where %I >= %s and %I < %s returning *) '
      'insert into private.%I select * from moved',
      parent_name || '_default', key_column, lower_bound, key_column, upper_bound, partition_name);
    execute format('alter table %s attach partition private.%I for values from (%s) to (%s)',
                   parent, partition_name, lower_bound, upper_bound);
    return 'moved';
  exception
    when foreign_key_violation then
      raise warning 'partition % not created: rows in the default partition are referenced (%)',
        partition_name, sqlerrm;
      return 'skipped';
    when lock_not_available then
      raise warning 'partition % not created: % is busy; retried on the next run', partition_name, parent;
      return 'busy';
  end;
end;
$$;
comment on function private.create_month_partition(regclass, date) is
  'Create the monthly partition of parent containing month; returns exists|created|moved|skipped|busy.';

create or replace function private.maintain_partitions(today date default current_date)
returns table (partition_name text, outcome text)
language plpgsql
set search_path = ''
as $$
declare
  plan record;
  offset_months int;
  month date;
begin
  for plan in
    select * from (values
      ('public.llm_mappings'::regclass, 3, 12),
      ('public.transactions'::regclass, 24, 3)
    ) as p (parent, months_back, months_ahead)
  loop
    for offset_months in -plan.months_back .. plan.months_ahead loop
      month := (date_trunc('month', today) + make_interval(months => offset_months))::date;
      partition_name := format('%s_p%s', (select c.relname from pg_catalog.pg_class as c where c.oid = plan.parent),
                               to_char(month, 'YYYY_MM'));
      outcome := private.create_month_partition(plan.parent, month);
      return next;
    end loop;
  end loop;
end;
$$;
comment on function private.maintain_partitions(date) is
  'Ensure monthly partitions around today exist (pg_cron, daily). Returns one row per month checked.';

select count(*) from private.maintain_partitions();

select cron.schedule('kamioi-maintain-partitions', '15 3 * * *', 'select count(*) from private.maintain_partitions()');
