defmodule Keyring.Refs.Ref do
  @moduledoc """
  A signed ref (see `Keyring.Refs`): `name` in `keyring` points to `root` at
  sequence number `seq`, signed by `author`. `bytes` is the signed encoding.
  """

  alias Keyring.Store.Cid

  @enforce_keys [:keyring, :author, :name, :root, :seq, :timestamp, :bytes]
  defstruct @enforce_keys

  @type t :: %__MODULE__{
          keyring: <<_::256>>,
          author: <<_::256>>,
          name: String.t(),
          root: Cid.t(),
          seq: pos_integer(),
          timestamp: non_neg_integer(),
          bytes: binary()
        }

  @doc false
  def from_native({bytes, ring, author, seq, ts, root, name}) do
    %__MODULE__{
      keyring: ring,
      author: author,
      name: name,
      root: Cid.encode(root),
      seq: seq,
      timestamp: ts,
      bytes: bytes
    }
  end
end
