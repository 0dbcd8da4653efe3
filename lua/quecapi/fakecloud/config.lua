-- The fake cloud's fixed App credentials, shared by the fake cloud and the specs.
--
-- Two user domains, each with its own secret, as some live Apps have: North
-- American accounts of one App sit under C.DM.x or U.DM.x (live-platform-evidence.md,
-- "Hosts and regions"). Users live under one of them.
return {
  user_domain = "C.DM.5903.1",
  user_domain_secret = "fAk3CloudS3cret0123456789abcdefghijklmnopQRST",
  second_user_domain = "U.DM.5903.1",
  second_user_domain_secret = "s3condD0mainS3cret9876543210zyxwvutsrqpoNMLK",
}
