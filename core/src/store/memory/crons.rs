//! The memory store's crons.

use super::*;
use crate::store::CronStore;

#[async_trait]
impl CronStore for MemoryStore {
    async fn put_cron(&self, cron: &Cron) -> StoreResult<()> {
        let mut inner = self.lock();
        match inner.crons.get_mut(&cron.cron_id) {
            Some((stored, _)) if stored.user_id != cron.user_id => return Err(StoreError::NotFound(Entity::Cron)),
            Some((stored, _)) => *stored = cron.clone(),
            None => {
                inner.crons.insert(cron.cron_id, (cron.clone(), None));
            }
        }
        Ok(())
    }

    async fn get_cron(&self, user: &UserId, cron_id: Uuid) -> StoreResult<Cron> {
        let inner = self.lock();
        let found = inner.crons.get(&cron_id).map(|(cron, _)| cron).filter(|cron| &cron.user_id == user);
        found.cloned().ok_or(StoreError::NotFound(Entity::Cron))
    }

    async fn list_crons(&self, user: &UserId) -> StoreResult<Vec<Cron>> {
        let mut crons = self.all_crons().await?;
        crons.retain(|cron| &cron.user_id == user);
        Ok(crons)
    }

    async fn delete_cron(&self, user: &UserId, cron_id: Uuid) -> StoreResult<()> {
        self.get_cron(user, cron_id).await?;
        self.lock().crons.remove(&cron_id);
        Ok(())
    }

    async fn all_crons(&self) -> StoreResult<Vec<Cron>> {
        let mut crons: Vec<Cron> = self.lock().crons.values().map(|(cron, _)| cron.clone()).collect();
        crons.sort_by_key(|cron| (cron.created_at, cron.cron_id));
        Ok(crons)
    }

    async fn claim_cron_slot(&self, cron_id: Uuid, slot: Timestamp) -> StoreResult<bool> {
        let mut inner = self.lock();
        let (_, last) = inner.crons.get_mut(&cron_id).ok_or(StoreError::NotFound(Entity::Cron))?;
        if last.is_some_and(|last| last >= slot) {
            return Ok(false);
        }
        *last = Some(slot);
        Ok(true)
    }
}
