/*
 * Merchant key length: one limit (500 characters) for every way a key gets in.
 *
 * Imports and the admin API refuse a descriptor or merchant name over 500 characters, and
 * `kamioi map` does too (kamioi.mapping.normalizer.MAX_DESCRIPTOR_CHARS), but `kamioi map --save`
 * once stored a 10 KB key, and a user's suggestion through the Data API checks nothing. The database
 * is the one place every entry point passes, so the limit is held here as well.
 *
 * NOT VALID: the check holds for every row written from now on (and every new partition inherits
 * it) without scanning the partitioned tables at deploy time; a used project may still hold an older
 * over-long key, which stays readable. char_length: characters, as the importer counts them.
 */

alter table public.llm_mappings
  add constraint llm_mappings_merchant_key_length check (char_length(merchant_key) <= 500) not valid;

alter table public.merchants
  add constraint merchants_merchant_key_length check (char_length(merchant_key) <= 500) not valid;
