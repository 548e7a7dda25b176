defmodule Keyring.Feed.Entry do
  @moduledoc """
  One entry of an author's feed in a keyring (see `Keyring.Feed`).

  `content` holds inline content (up to 16 KiB); larger content lives in the
  store as a blob, named by `cid` with its `size`. `hash` is the entry's id
  (BLAKE3 over its signed fields) and `prev` the hash of the entry before it
  (all zeros for seq 1). `bytes` is the signed encoding, as it travels.
  """

  alias Keyring.Store.Cid

  @enforce_keys [:keyring, :author, :seq, :prev, :hash, :timestamp, :type, :bytes]
  defstruct [
    :keyring,
    :author,
    :seq,
    :prev,
    :hash,
    :timestamp,
    :type,
    :content,
    :cid,
    :size,
    :bytes
  ]

  @type t :: %__MODULE__{
          keyring: <<_::256>>,
          author: <<_::256>>,
          seq: pos_integer(),
          prev: <<_::256>>,
          hash: <<_::256>>,
          timestamp: non_neg_integer(),
          type: String.t(),
          content: binary() | nil,
          cid: Cid.t() | nil,
          size: non_neg_integer(),
          bytes: binary()
        }

  @doc false
  def from_native({bytes, ring, author, seq, prev, hash, ts, type, content}) do
    entry = %__MODULE__{
      keyring: ring,
      author: author,
      seq: seq,
      prev: prev,
      hash: hash,
      timestamp: ts,
      type: type,
      bytes: bytes
    }

    case content do
      {cid, size} -> %{entry | cid: Cid.encode(cid), size: size}
      inline -> %{entry | content: inline, size: byte_size(inline)}
    end
  end

  defimpl Inspect do
    def inspect(e, _opts) do
      what = if e.cid, do: "cid=#{binary_part(e.cid, 0, 12)}…", else: "#{e.size} bytes"

      "#Keyring.Feed.Entry<#{Keyring.Identity.NodeId.short(Keyring.Identity.NodeId.encode(e.author))}… " <>
        "seq=#{e.seq} #{e.type} #{what}>"
    end
  end
end
