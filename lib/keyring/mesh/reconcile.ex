defmodule Keyring.Mesh.Reconcile do
  @moduledoc false
  # Keyring.Mesh.reconcile/3: options and the call into the mesh's set
  # reconciliation (protocol 6, native/keyring_net src/protocols/
  # reconcile.rs), which runs on the mesh's Rust runtime and answers this
  # process by message.

  alias Keyring.{Instance, Native}
  alias Keyring.Store.Cid

  @schema [
    address: [type: :string, doc: "`\"host:port\"` of the peer (default: learned)"],
    timeout: [type: :pos_integer, default: 60_000, doc: "ms for the whole reconciliation"],
    instance: [type: :atom, default: Keyring, doc: "the local instance"]
  ]

  def schema, do: @schema

  def reconcile(peer, keyring, opts) do
    opts = Keyring.Options.validate!(opts, @schema, "Keyring.Mesh.reconcile")
    peer = peer!(peer)
    ring = Keyring.Ring.id!(keyring)
    mesh = Instance.fetch!(opts[:instance], :mesh)
    ref = make_ref()
    :ok = Native.mesh_reconcile(mesh, ref, ring, peer, opts[:address], opts[:timeout])

    receive do
      {:keyring_reply, ^ref, {:ok, diff}} ->
        {:ok,
         %{
           diff
           | have: Enum.map(diff.have, &Cid.encode/1),
             need: Enum.map(diff.need, &Cid.encode/1)
         }}

      {:keyring_reply, ^ref, {:error, reason}} ->
        {:error, reason}
    after
      opts[:timeout] + 2_000 -> {:error, :timeout}
    end
  end

  defp peer!(<<_::256>> = key), do: key
  defp peer!(text) when is_binary(text), do: Keyring.Ring.id!(text)
end
