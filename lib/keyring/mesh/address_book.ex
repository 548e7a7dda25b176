defmodule Keyring.Mesh.AddressBook do
  @moduledoc false
  # Where this node last reached each peer, kept in the instance's store (one
  # ref per peer, "keyring/peers/<hex key>" -> "host:port"), so that a node
  # that restarts, possibly on another port, can dial its keyrings' members
  # again instead of waiting to be called. Local data only: never sent, never
  # read from a peer.

  alias Keyring.Store

  @prefix "keyring/peers/"

  @spec load(Keyring.instance()) :: %{<<_::256>> => String.t()}
  def load(instance) do
    case Store.list_refs(@prefix, instance: instance) do
      {:ok, refs} ->
        for {@prefix <> hex, address} <- refs,
            {:ok, <<_::256>> = key} <- [Base.decode16(hex, case: :lower)],
            into: %{},
            do: {key, address}

      {:error, _} ->
        %{}
    end
  end

  @spec save(Keyring.instance(), <<_::256>>, String.t()) :: :ok | {:error, term()}
  def save(instance, key, address),
    do: Store.put_ref(@prefix <> Base.encode16(key, case: :lower), address, instance: instance)
end
