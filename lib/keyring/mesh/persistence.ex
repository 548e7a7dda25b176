defmodule Keyring.Mesh.Persistence do
  @moduledoc false
  # Where a node keeps its keyrings: in the instance's Keyring.Store, one
  # durable ref per keyring ("keyring/rings/<hex id>") holding the membership
  # log entries, the root key (sealed key-file bytes, only on the node that
  # created the keyring) and the spent one-time invite tokens.
  #
  # The value format is local (never read from a peer, never sent); entries
  # are re-verified on load, so a tampered log is refused rather than trusted.

  alias Keyring.Store

  @prefix "keyring/rings/"

  alias Keyring.Mesh.Log

  @type saved :: %{
          id: <<_::256>>,
          entries: [binary()],
          root_key: binary() | nil,
          spent: [binary()]
        }

  @spec save(Keyring.instance(), Keyring.Mesh.Rings.ring()) :: :ok | {:error, term()}
  def save(instance, ring) do
    data = %{v: 1, entries: Log.entries(ring.log), root_key: ring.root_key, spent: ring.spent}
    Store.put_ref(ref(Log.id(ring.log)), :erlang.term_to_binary(data), keyring: instance)
  end

  @spec load_all(Keyring.instance()) :: [saved()]
  def load_all(instance) do
    case Store.list_refs(@prefix, keyring: instance) do
      {:ok, refs} -> Enum.flat_map(refs, &decode/1)
      {:error, _} -> []
    end
  end

  defp decode({@prefix <> hex, bytes}) do
    with {:ok, id} <- Base.decode16(hex, case: :lower),
         %{v: 1, entries: entries, root_key: root, spent: spent} <-
           :erlang.binary_to_term(bytes, [:safe]) do
      [%{id: id, entries: entries, root_key: root, spent: spent}]
    else
      _ -> []
    end
  end

  @spec delete(Keyring.instance(), <<_::256>>) :: :ok
  def delete(instance, id) do
    Store.delete_ref(ref(id), keyring: instance)
    :ok
  end

  defp ref(id), do: @prefix <> Base.encode16(id, case: :lower)
end
