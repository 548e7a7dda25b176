defmodule Keyring.Refs.Server do
  @moduledoc false
  # Serializes the read-modify-write of signed refs: a publish reads this
  # node's current ref of the name and signs the next seq; an ingest reads
  # the held ref and keeps the newcomer only if its seq is higher. A ref is
  # stored (durably) before it is acknowledged or announced.

  use GenServer

  alias Keyring.{Instance, Native, PubSub, Store}
  alias Keyring.Feed.Layout
  alias Keyring.Refs.Ref

  def start_link(opts),
    do: GenServer.start_link(__MODULE__, opts, name: server(opts[:name]))

  # Named <instance>.Refs.Server: the last segment alone would collide.
  def server(instance), do: Module.concat([instance, "Refs.Server"])

  @impl GenServer
  def init(opts) do
    name = opts[:name]

    {:ok,
     %{
       name: name,
       keypair: Instance.fetch!(name, :keypair),
       me: Instance.fetch!(name, :public_key)
     }}
  end

  @impl GenServer
  def handle_call({:publish, ring, name, root}, _from, state) do
    key = Layout.ref(ring, state.me, name)

    reply =
      with {:ok, seq} <- next_seq(state, key),
           {:ok, fields} <-
             Native.ref_sign(state.keypair, ring, name, root, seq, System.os_time(:millisecond)) do
        store(state, key, Ref.from_native(fields))
      end

    {:reply, reply, state}
  end

  def handle_call({:ingest, ring, members, refs}, _from, state) do
    {:reply, {:ok, Enum.map(refs, &ingest_one(state, ring, members, &1))}, state}
  end

  defp ingest_one(state, ring, members, bytes) do
    with {:ok, fields} <- Native.ref_decode(bytes),
         ref = Ref.from_native(fields),
         :ok <- if(ref.author in members, do: :ok, else: {:error, :not_a_member}),
         key = Layout.ref(ring, ref.author, ref.name),
         {:ok, current} <- current(state, key),
         {:ok, {update, _}} <- Native.ref_accept(bytes, ring, current) do
      case update do
        :duplicate -> {:ok, :duplicate}
        _ -> with {:ok, _} <- store(state, key, ref), do: {:ok, update}
      end
    end
  end

  defp store(state, key, %Ref{} = ref) do
    with :ok <- Store.put_ref(key, ref.bytes, instance: state.name) do
      PubSub.local_broadcast(Keyring.Feed.Server.topic(), {:keyring_feed, :ref, ref},
        instance: state.name
      )

      {:ok, ref}
    end
  end

  defp current(state, key) do
    case Store.get_ref(key, instance: state.name) do
      {:ok, bytes} -> {:ok, bytes}
      {:error, :not_found} -> {:ok, nil}
      error -> error
    end
  end

  defp next_seq(state, key) do
    with {:ok, current} <- current(state, key) do
      case current && Native.ref_decode(current) do
        nil -> {:ok, 1}
        {:ok, {_, _, _, seq, _, _, _}} -> {:ok, seq + 1}
        error -> error
      end
    end
  end
end
