defmodule Keyring.Test.Feeds do
  @moduledoc false
  # Hand-built feed entries and refs, signed with an instance's own key but
  # outside its Feed.Server: what a peer (honest or not) would send.

  alias Keyring.Native

  @doc """
  Entries `from..from+count-1` of `instance`'s feed in `ring`, continuing
  after `before` (encoded entries 1..from-1, which may differ from what the
  instance itself stored: that is how a fork is made).
  """
  def entries(instance, ring, count, opts \\ []) do
    before = Keyword.get(opts, :before, [])
    tag = Keyword.get(opts, :tag, "forged")
    keypair = Keyring.Instance.fetch!(instance, :keypair)
    book = Native.feed_book_new(1_048_576, 4096, 64 * 1024 * 1024)
    {:ok, _} = Native.feed_load(book, before)

    for i <- 1..count//1 do
      {:ok, {:chained, {bytes, _, _, _, _, _, _, _, _}, _, _}} =
        Native.feed_append(
          book,
          keypair,
          ring,
          System.os_time(:millisecond),
          "text/plain",
          "#{tag} #{i}"
        )

      bytes
    end
  end

  @doc "A ref of `instance` signed at an explicit `seq` (what a replay or an equivocation looks like)."
  def ref(instance, ring, name, root, seq) do
    keypair = Keyring.Instance.fetch!(instance, :keypair)
    {:ok, fields} = Native.ref_sign(keypair, ring, name, Keyring.Store.Cid.parse!(root), seq, seq)
    elem(fields, 0)
  end

  @doc "Flips the last byte (inside the signature)."
  def tamper(bytes) do
    size = byte_size(bytes) - 1
    <<head::binary-size(size), last>> = bytes
    head <> <<Bitwise.bxor(last, 1)>>
  end
end
