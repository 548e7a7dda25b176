defmodule Keyring.DAG.Raw do
  @moduledoc """
  A raw DAG node: application bytes and an ordered list of links.

  A link is `{:node, cid}` (another DAG node, followed by walks and sync)
  or `{:blob, cid}` (opaque bytes, a leaf). Limits: 16,384 links and 1 MiB
  for the whole encoding (see `Keyring.DAG`).
  """

  defstruct data: "", links: []

  @type link :: {:node | :blob, Keyring.Store.Cid.t()}
  @type t :: %__MODULE__{data: binary(), links: [link()]}
end
