"""The evidence vault: sealed bundles in S3 Object Lock (WORM) storage, verified where they lie.

Modules: `location` (s3://BUCKET/PREFIX and the key layout), `client` (boto3 from its standard
configuration), `bucket` (init and checks), `push`, `remote` (verify in place), `pull`, `listing`,
`witness` (custody events as immutable objects), `server` (the embedded SeaweedFS).
"""
