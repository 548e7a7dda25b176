defmodule Keyring.Mesh.Persistence do
  @moduledoc false
  # Where a node keeps its keyrings.
  #
  #   * The membership entries: in the instance's Keyring.Store (refs below).
  #     The value format is local (never read from a peer, never sent);
  #     entries are re-verified on load, so a tampered log is refused.
  #   * The root key (only on the node that created the keyring): never in
  #     the store, but in its own sealed key file beside identity.key,
  #     `<data_dir>/root_keys/<hex id>.key` (0600 in a 0700 directory,
  #     sealed with the instance passphrase; see Keyring.Identity.KeyFile).
  #
  # Layout: "keyring/ring/<hex id>/root" says whether this node holds the
  # root key; each change adds "keyring/ring/<hex id>/e/<hex hash>" holding
  # the entries it added (so a change costs one small durable write, not a
  # rewrite of the log). The entries of a keyring are the union of its
  # batches, in any order: the ring verifies them once when it opens.

  alias Keyring.Identity.KeyFile
  alias Keyring.Store

  @prefix "keyring/ring/"

  @type saved :: %{id: <<_::256>>, entries: [binary()], root: boolean()}

  @doc "Saves the `entries` a change added to keyring `id` (and whether we hold its root key)."
  @spec save(Keyring.instance(), <<_::256>>, boolean(), [binary()]) :: :ok | {:error, term()}
  def save(instance, id, root, entries) do
    with :ok <- Store.put_ref(ref(id, "root"), if(root, do: "1", else: "0"), instance: instance) do
      case entries do
        [] ->
          :ok

        _ ->
          batch = :erlang.term_to_binary(entries)
          name = "e/" <> Base.encode16(:crypto.hash(:sha256, batch), case: :lower)
          Store.put_ref(ref(id, name), batch, instance: instance)
      end
    end
  end

  @doc """
  Keeps a keyring's root key in its own sealed file (a new keyring's file is
  never overwritten; `replace` after a rotation).
  Without a passphrase the file mode alone protects it: that is logged as a
  warning the first time in this VM, then at debug level.
  """
  @spec save_root_key(Path.t(), <<_::256>>, reference(), binary() | nil, boolean()) ::
          :ok | {:error, term()}
  def save_root_key(data_dir, id, keypair, passphrase, replace) do
    warned = {__MODULE__, :unsealed_warned}
    level = if :persistent_term.get(warned, false), do: :debug, else: :warning
    if passphrase == nil, do: :persistent_term.put(warned, true)

    KeyFile.save_secret(KeyFile.root_key_path(data_dir, id), keypair, passphrase,
      log_unsealed: level,
      replace: replace
    )
  end

  @doc "Opens a keyring's root key (for root-only operations such as rotation)."
  @spec load_root_key(Path.t(), <<_::256>>, binary() | nil) ::
          {:ok, reference()} | {:error, term()}
  def load_root_key(data_dir, id, passphrase),
    do: KeyFile.load_secret(KeyFile.root_key_path(data_dir, id), passphrase)

  @spec load_all(Keyring.instance()) :: [saved()]
  def load_all(instance) do
    case Store.list_refs(@prefix, instance: instance) do
      {:ok, refs} ->
        refs
        |> Enum.flat_map(&parse/1)
        |> Enum.group_by(&elem(&1, 0), &elem(&1, 1))
        |> Enum.flat_map(fn {id, parts} -> assemble(id, parts) end)

      {:error, _} ->
        []
    end
  end

  defp parse({@prefix <> rest, value}) do
    with [hex, kind] <- String.split(rest, "/", parts: 2),
         {:ok, <<_::256>> = id} <- Base.decode16(hex, case: :lower) do
      case kind do
        "root" -> [{id, {:root, value == "1"}}]
        "e/" <> _ -> [{id, {:entries, :erlang.binary_to_term(value, [:safe])}}]
        _ -> []
      end
    else
      _ -> []
    end
  end

  defp assemble(id, parts) do
    root = Enum.find_value(parts, false, fn {kind, v} -> kind == :root && v end)
    entries = for {:entries, list} <- parts, entry <- list, is_binary(entry), do: entry
    if entries == [], do: [], else: [%{id: id, entries: entries, root: root}]
  end

  @spec delete(Keyring.instance(), <<_::256>>) :: :ok
  def delete(instance, id) do
    case Store.list_refs(@prefix <> hex(id) <> "/", instance: instance) do
      {:ok, refs} -> for {name, _} <- refs, do: Store.delete_ref(name, instance: instance)
      _ -> :ok
    end

    :ok
  end

  defp ref(id, name), do: @prefix <> hex(id) <> "/" <> name
  defp hex(id), do: Base.encode16(id, case: :lower)
end
