rustler::atoms! {
    ok,
    error,
    bad_length,
    bad_passphrase,
    passphrase_required,
    malformed_key_file,
    random_failed,
    io,
    keyring_reply,
    task_aborted,
}
