defmodule Keyring.Feed.Layout do
  @moduledoc false
  # Where feeds, forks, follows and signed refs live among the store's refs
  # (keys and authors in lowercase hex, so names sort by bytes):
  #
  #   keyring/feeds/<ring>/<author>                  ""  (the feed exists; written before its first entry)
  #   keyring/feed/<ring>/<author>/<seq, 16 hex>     encoded entry (chained entries only)
  #   keyring/forks/<ring>/<author>/<seq>/<hash>     the entry that revealed a fork at seq
  #   keyring/follows/<ring>/<author>                ""
  #   keyring/refs/<ring>/<author>/<name>            encoded signed ref
  #
  # Entries are read in blocks of 4096 sequence numbers: every seq of a block
  # shares its first 13 hex digits, so a block is one prefix listing.

  import Bitwise

  @block_bits 12
  @block 1 <<< @block_bits

  def block_size, do: @block

  def feeds(nil), do: "keyring/feeds/"
  def feeds(ring), do: "keyring/feeds/" <> hex(ring) <> "/"
  def feed(ring, author), do: feeds(ring) <> hex(author)

  def entry(ring, author, seq), do: entries(ring, author) <> seq_hex(seq)
  def entries(ring, author), do: "keyring/feed/" <> hex(ring) <> "/" <> hex(author) <> "/"

  # The prefix of the block holding `seq`, and the block's first seq.
  def block(ring, author, seq) do
    first = seq >>> @block_bits <<< @block_bits
    {entries(ring, author) <> binary_part(seq_hex(first), 0, 16 - div(@block_bits, 4)), first}
  end

  def fork(ring, author, seq, hash),
    do: forks(ring) <> hex(author) <> "/" <> seq_hex(seq) <> "/" <> hex(hash)

  def forks(ring), do: "keyring/forks/" <> hex(ring) <> "/"

  def follow(ring, author), do: follows(ring) <> hex(author)
  def follows(ring), do: "keyring/follows/" <> hex(ring) <> "/"

  def ref(ring, author, name), do: refs(ring, author) <> name
  def refs(ring, nil), do: "keyring/refs/" <> hex(ring) <> "/"
  def refs(ring, author), do: refs(ring, nil) <> hex(author) <> "/"

  # The hex key after `prefix` in `name`, as raw bytes.
  def key_after(prefix, name) do
    <<hex::binary-size(64), _::binary>> = after_prefix(prefix, name)
    Base.decode16!(hex, case: :lower)
  end

  def after_prefix(prefix, name),
    do: binary_part(name, byte_size(prefix), byte_size(name) - byte_size(prefix))

  defp hex(key), do: Base.encode16(key, case: :lower)

  defp seq_hex(seq),
    do: seq |> Integer.to_string(16) |> String.downcase() |> String.pad_leading(16, "0")
end
