-- The fake cloud's fixed App credentials, shared by the fake cloud and the specs.
return {
  user_domain = "C.DM.5903.1",
  user_domain_secret = "fAk3CloudS3cret0123456789abcdefghijklmnopQRST",
}
